// Fused multi-head attention: out = softmax(Q·Kᵀ·scale + bias + mask)·V per (batch, head), with an
// online softmax (running max m and sum l per query, the accumulator rescaled by exp(m_old − m_new)
// once per key block): no score matrix in memory and no separate softmax pass.
//
// Layouts are strided: element (batch b, head h, token t, column c) of Q, K, V and the output lies
// at off + b·stride_b + h·stride_h + t·stride_t + c (the head's D columns are contiguous).
// Optional extras:
//   mask  additive, one value per key: mask[mask_off + b·mask_b + key] (f32::MIN on padding),
//   bias  additive position bias per (query, key): bias[bias_off + b·bias_b + h·bias_h +
//         query·bias_q + key·bias_k] (DeBERTa/MPNet relative bias; bias_b 0 shares it across the
//         batch),
//   window  key j is visible to query i only when |i − j| ≤ half (ModernBERT local attention;
//         the wrapper passes half = seq for global attention).
// A key that is visible but masked gets a score of f32::MIN (the score is absorbed in f32), so a
// row whose visible keys are all masked averages them evenly (as the three-kernel path and
// transformers do) instead of producing NaN; invisible keys get a weight of exactly 0.
//
// The Rust wrapper prepends the declarations of `qs`, `ks`, `vs` with their loads (`load_qs(i)`:
// element i as f32; `ld4_q(base, c4)`: columns 4·c4 .. 4·c4+3 of the row at element `base`, 0
// past D; the same for k and v), read as scalars or, where every row starts at a multiple of 4,
// as vec4s; the constants D (head dim), D4 = ceil(D / 4) and BK (keys per shared-memory block);
// and appends `main_rows` with its WR (invocations per workgroup).

struct Params {
    seq: u32, heads: u32, bh: u32, half: u32,
    q_off: u32, q_b: u32, q_h: u32, q_t: u32,
    k_off: u32, k_b: u32, k_h: u32, k_t: u32,
    v_off: u32, v_b: u32, v_h: u32, v_t: u32,
    o_off: u32, o_b: u32, o_h: u32, o_t: u32,
    mask_off: u32, mask_b: u32, has_mask: u32, has_bias: u32,
    bias_off: u32, bias_b: u32, bias_h: u32, bias_q: u32,
    bias_k: u32, scale: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> mask: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
// Binding 6, the output, is declared by the wrapper with store_out(i, v): f32, or f16 under
// --precision f16.

// -f32::MAX. Written 3.4028234e38: the shortest decimal of f32::MAX (…35e38) lies just past it,
// which Tint (browsers) rejects as unrepresentable; this one rounds to f32::MAX exactly.
const NEG: f32 = -3.4028234e38;

// Where one workgroup works: its (batch, head), first query and the keys any of its queries sees.
struct Block { b: u32, h: u32, q0: u32, lo: u32, hi: u32, valid: bool }

// Workgroups are [query blocks, bh split over y and z]: bh = wg.y + wg.z · num_workgroups.y.
fn block(wg: vec3<u32>, nwg: vec3<u32>, queries: u32) -> Block {
    let p = params;
    var r: Block;
    let bhi = wg.y + wg.z * nwg.y;
    r.valid = bhi < p.bh;
    r.b = bhi / p.heads;
    r.h = bhi % p.heads;
    r.q0 = wg.x * queries;
    let qlast = min(r.q0 + queries, p.seq) - 1u;
    r.lo = select(0u, r.q0 - p.half, r.q0 > p.half);
    r.hi = min(p.seq, qlast + p.half + 1u);
    return r;
}

fn visible(i: u32, j: u32, hi: u32) -> bool {
    let dist = select(j - i, i - j, i > j);
    return j < hi && dist <= params.half;
}

fn bias_at(bk: Block, i: u32, j: u32) -> f32 {
    let p = params;
    return bias[p.bias_off + bk.b * p.bias_b + bk.h * p.bias_h + i * p.bias_q + j * p.bias_k];
}

// ---- GPUs: a workgroup of 64 invocations takes 64 queries of one (batch, head), one query per
// invocation; blocks of BK keys (K, V, mask) are staged in workgroup memory and every invocation
// reads the same element at once (a broadcast). q, the accumulator and the block's scores live in
// registers (arrays with constant indices once the loops over D and BK are unrolled).
const QB: u32 = 64u;
var<workgroup> k_tile: array<f32, BK * D>;
var<workgroup> v_tile: array<f32, BK * D>;
var<workgroup> e_tile: array<f32, BK>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let p = params;
    let bk = block(wg, nwg, QB);
    // Uniform per workgroup, so returning keeps the barriers below in uniform control flow.
    if (!bk.valid) { return; }
    // Queries past the end compute the last row again and are not stored.
    let i = min(bk.q0 + li, p.seq - 1u);
    let scale = bitcast<f32>(p.scale);
    let qb = p.q_off + bk.b * p.q_b + bk.h * p.q_h + i * p.q_t;
    var q: array<f32, D>;
    var acc: array<f32, D>;
    for (var c = 0u; c < D; c++) {
        q[c] = load_qs(qb + c) * scale;
        acc[c] = 0.0;
    }
    let kb = p.k_off + bk.b * p.k_b + bk.h * p.k_h;
    let vb = p.v_off + bk.b * p.v_b + bk.h * p.v_h;
    var m = NEG;
    var l = 0.0;
    for (var j0 = bk.lo; j0 < bk.hi; j0 += BK) {
        for (var e = li; e < BK * D; e += QB) {
            let j = j0 + e / D;
            let c = e % D;
            var kv = 0.0;
            var vv = 0.0;
            if (j < bk.hi) {
                kv = load_ks(kb + j * p.k_t + c);
                vv = load_vs(vb + j * p.v_t + c);
            }
            k_tile[e] = kv;
            v_tile[e] = vv;
        }
        if (li < BK && p.has_mask != 0u) {
            e_tile[li] = mask[p.mask_off + bk.b * p.mask_b + min(j0 + li, bk.hi - 1u)];
        }
        workgroupBarrier();
        var s: array<f32, BK>;
        var mx = m;
        for (var r = 0u; r < BK; r++) {
            var t = 0.0;
            for (var c = 0u; c < D; c++) { t = fma(q[c], k_tile[r * D + c], t); }
            let j = min(j0 + r, bk.hi - 1u);
            if (p.has_bias != 0u) { t += bias_at(bk, i, j); }
            if (p.has_mask != 0u) { t += e_tile[r]; }
            s[r] = t;
            if (visible(i, j0 + r, bk.hi)) { mx = max(mx, t); }
        }
        let alpha = exp(m - mx);
        l *= alpha;
        for (var c = 0u; c < D; c++) { acc[c] *= alpha; }
        for (var r = 0u; r < BK; r++) {
            let w = select(0.0, exp(s[r] - mx), visible(i, j0 + r, bk.hi));
            l += w;
            for (var c = 0u; c < D; c++) { acc[c] = fma(w, v_tile[r * D + c], acc[c]); }
        }
        m = mx;
        workgroupBarrier();
    }
    if (bk.q0 + li < p.seq) {
        let ob = p.o_off + bk.b * p.o_b + bk.h * p.o_h + i * p.o_t;
        let inv = select(0.0, 1.0 / l, l > 0.0);
        for (var c = 0u; c < D; c++) { store_out(ob + c, acc[c] * inv); }
    }
}

// ---- CPU adapters (lavapipe): `main_rows`, appended by the Rust wrapper (`rows_entry` in
// src/ops/attention.rs), which writes it out unrolled for the head dimension. No workgroup memory
// and no barriers (a barrier there switches coroutines, and workgroup memory is ordinary cache),
// and no arrays: the same kernel with per-query arrays indexed by loop counters ran 3× slower.
// Each invocation takes QR queries (q0 + r·WR + li for r < QR), so every K and V element it loads
// (one scalar load per lane there, the cost that dominates) serves all of them; keys go 4 at a
// time, with one online-softmax rescale per 4.

// Stores 4 columns c4·4 .. c4·4+3 of an output row starting at element `base` (columns < D).
fn store4(base: u32, c4: u32, o: vec4<f32>) {
    let c = c4 * 4u;
    if (D % 4u == 0u || c + 3u < D) {
        store_out(base + c, o.x);
        store_out(base + c + 1u, o.y);
        store_out(base + c + 2u, o.z);
        store_out(base + c + 3u, o.w);
        return;
    }
    for (var t = 0u; t < 4u; t++) { if (c + t < D) { store_out(base + c + t, o[t]); } }
}
