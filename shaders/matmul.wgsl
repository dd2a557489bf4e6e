// Batched, strided C = act(alpha · A·Bᵀ + bias), f32 accumulation.
// A(m, k) and B(n, k) are read through element strides, so one kernel family serves X·Wᵀ with
// weights as Hugging Face stores them ([out, in]), Q·Kᵀ and P·V straight out of the fused QKV
// buffer (no transposes), and first-token gathers (a row stride that skips tokens).
// The Rust wrapper prepends the declarations of `a`, `b` and `bias` (load_a / load4_a, load_b /
// load4_b, load_bias: f32, packed f16 or native f16), of `c` (store_c: f32, or f16 for the f16
// activations of --precision f16) and the activation functions, then appends this common part
// and one of the two sections below.

struct Params {
    m: u32, n: u32, k: u32, batch1: u32,
    a_off: u32, a_b0: u32, a_b1: u32, a_m: u32, a_k: u32,
    b_off: u32, b_b0: u32, b_b1: u32, b_n: u32, b_k: u32,
    c_off: u32, c_b0: u32, c_b1: u32, c_m: u32, c_n: u32,
    alpha: u32, has_bias: u32, act: u32,
    m_tiles: u32, batches: u32, bias_off: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

// (row tile, batch) of a workgroup: the host spreads row tiles × batches over y and z so no
// dimension exceeds the 65,535-workgroup limit; the last few workgroups may fall past the end.
fn locate(wg: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
    let ly = wg.y + wg.z * nwg.y;
    return vec2<u32>(ly % params.m_tiles, ly / params.m_tiles);
}

fn store(gm: u32, gn: u32, c_base: u32, acc: f32) {
    if (gm >= params.m || gn >= params.n) { return; }
    var v = acc * bitcast<f32>(params.alpha);
    if (params.has_bias != 0u) { v += load_bias(params.bias_off + gn); }
    store_c(c_base + gm * params.c_m + gn * params.c_n, apply_act(v, params.act));
}

// ---- scalar section: any strides ----

// Tiled (GPUs): a TW×TW workgroup computes a 4TW×4TW tile of C through shared memory; each
// thread owns 4×4 outputs strided by TW so shared reads and C writes are consecutive across
// threads. TW is 16 (64×64 tiles), or 8 (32×32) for small products that would otherwise leave
// most of a large GPU idle; the wrapper sets it.
const TW: u32 = 16u;
const TM: u32 = 4u * TW;
const TN: u32 = 4u * TW;
const TK: u32 = 16u;
const THREADS: u32 = TW * TW;

var<workgroup> as_: array<f32, TK * TM>; // [TK][TM]
var<workgroup> bs_: array<f32, TK * TN>; // [TK][TN]

@compute @workgroup_size(TW, TW)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let p = params;
    let tile = locate(wg, nwg);
    if (tile.y >= p.batches) { return; }
    let b0 = tile.y / p.batch1;
    let b1 = tile.y % p.batch1;
    let a_base = p.a_off + b0 * p.a_b0 + b1 * p.a_b1;
    let b_base = p.b_off + b0 * p.b_b0 + b1 * p.b_b1;
    let c_base = p.c_off + b0 * p.c_b0 + b1 * p.c_b1;
    let row0 = tile.x * TM;
    let col0 = wg.x * TN;
    let tx = lid.x;
    let ty = lid.y;

    // Accumulators as vec4s, never a local array: dynamically indexed local arrays end up in
    // memory on some compilers.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    let ntiles = (p.k + TK - 1u) / TK;
    for (var t = 0u; t < ntiles; t++) {
        let k0 = t * TK;
        // TK·TM elements per tile, k fastest (the contiguous axis of weights).
        for (var idx = li; idx < TK * TM; idx += THREADS) {
            let r = idx / TK;
            let kk = idx % TK;
            let gk = k0 + kk;
            let gm = row0 + r;
            var va = 0.0;
            if (gm < p.m && gk < p.k) { va = load_a(a_base + gm * p.a_m + gk * p.a_k); }
            as_[kk * TM + r] = va;
            let gn = col0 + r;
            var vb = 0.0;
            if (gn < p.n && gk < p.k) { vb = load_b(b_base + gn * p.b_n + gk * p.b_k); }
            bs_[kk * TN + r] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let ao = kk * TM + ty;
            let bo = kk * TN + tx;
            let av = vec4<f32>(as_[ao], as_[ao + TW], as_[ao + 2u * TW], as_[ao + 3u * TW]);
            let bv = vec4<f32>(bs_[bo], bs_[bo + TW], bs_[bo + 2u * TW], bs_[bo + 3u * TW]);
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }
    store4(row0 + ty, col0 + tx, TW, c_base, acc0);
    store4(row0 + ty + TW, col0 + tx, TW, c_base, acc1);
    store4(row0 + ty + 2u * TW, col0 + tx, TW, c_base, acc2);
    store4(row0 + ty + 3u * TW, col0 + tx, TW, c_base, acc3);
}

// One row of 4 outputs at columns gn, gn+step, gn+2·step, gn+3·step.
fn store4(gm: u32, gn: u32, step: u32, c_base: u32, v: vec4<f32>) {
    store(gm, gn, c_base, v.x);
    store(gm, gn + step, c_base, v.y);
    store(gm, gn + 2u * step, c_base, v.z);
    store(gm, gn + 3u * step, c_base, v.w);
}

// Direct (CPU adapters such as lavapipe): no shared memory and no barriers — there, workgroup
// memory is ordinary cache and a barrier switches coroutines. Each invocation owns 4 rows × 4
// columns; the rows are shared by the workgroup.
const DW: u32 = 64u;

@compute @workgroup_size(64)
fn main_direct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let p = params;
    let tile = locate(wg, nwg);
    if (tile.y >= p.batches) { return; }
    let b0 = tile.y / p.batch1;
    let b1 = tile.y % p.batch1;
    let a_base = p.a_off + b0 * p.a_b0 + b1 * p.a_b1;
    let b_base = p.b_off + b0 * p.b_b0 + b1 * p.b_b1;
    let c_base = p.c_off + b0 * p.c_b0 + b1 * p.c_b1;
    let row0 = tile.x * 4u;
    let col = wg.x * (4u * DW) + li;
    // No barriers here: invocations wholly past the last column (a small head's few outputs)
    // leave rather than repeat its work.
    if (col >= p.n) { return; }
    // Rows and columns past the edge read the last valid one and are never stored.
    let lm = p.m - 1u;
    let ln = p.n - 1u;
    let ar0 = a_base + min(row0, lm) * p.a_m;
    let ar1 = a_base + min(row0 + 1u, lm) * p.a_m;
    let ar2 = a_base + min(row0 + 2u, lm) * p.a_m;
    let ar3 = a_base + min(row0 + 3u, lm) * p.a_m;
    let bc0 = b_base + min(col, ln) * p.b_n;
    let bc1 = b_base + min(col + DW, ln) * p.b_n;
    let bc2 = b_base + min(col + 2u * DW, ln) * p.b_n;
    let bc3 = b_base + min(col + 3u * DW, ln) * p.b_n;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.k; k++) {
        let ka = k * p.a_k;
        let kb = k * p.b_k;
        let bv = vec4<f32>(load_b(bc0 + kb), load_b(bc1 + kb), load_b(bc2 + kb), load_b(bc3 + kb));
        acc0 += load_a(ar0 + ka) * bv;
        acc1 += load_a(ar1 + ka) * bv;
        acc2 += load_a(ar2 + ka) * bv;
        acc3 += load_a(ar3 + ka) * bv;
    }
    store4(row0, col, DW, c_base, acc0);
    store4(row0 + 1u, col, DW, c_base, acc1);
    store4(row0 + 2u, col, DW, c_base, acc2);
    store4(row0 + 3u, col, DW, c_base, acc3);
}

// ---- vec4 section: k contiguous in A and B, K and every row start a multiple of 4 ----
// (CPU adapters) Loads are the expensive part there (llvmpipe loads a non-uniform address lane by
// lane), so each load brings 4 values of k and each invocation owns 8 rows × 6 columns: per k
// step, 14 vec4 loads feed 48 four-wide dot products.

@compute @workgroup_size(64)
fn main_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let p = params;
    let tile = locate(wg, nwg);
    if (tile.y >= p.batches) { return; }
    let b0 = tile.y / p.batch1;
    let b1 = tile.y % p.batch1;
    // Offsets and strides in vec4 units (the wrapper checked divisibility).
    let a_base = (p.a_off + b0 * p.a_b0 + b1 * p.a_b1) / 4u;
    let b_base = (p.b_off + b0 * p.b_b0 + b1 * p.b_b1) / 4u;
    let c_base = p.c_off + b0 * p.c_b0 + b1 * p.c_b1;
    // The workgroup covers 64 rows × 48 columns as an 8×8 grid of 8-row × 6-column blocks;
    // a block's columns are 8 apart. Rows and columns past the edge read the last valid one and
    // are never stored.
    let row0 = tile.x * 64u + (li / 8u) * 8u;
    let col = wg.x * 48u + li % 8u;
    // No barriers here, so invocations wholly past the last row or column leave: with few rows
    // (short texts) they would otherwise repeat its work, 8× over at 8 rows.
    if (row0 >= p.m || col >= p.n) { return; }
    let lm = p.m - 1u;
    let ln = p.n - 1u;
    let am = p.a_m / 4u;
    let bn = p.b_n / 4u;
    let ar0 = a_base + min(row0 + 0u, lm) * am;
    let ar1 = a_base + min(row0 + 1u, lm) * am;
    let ar2 = a_base + min(row0 + 2u, lm) * am;
    let ar3 = a_base + min(row0 + 3u, lm) * am;
    let ar4 = a_base + min(row0 + 4u, lm) * am;
    let ar5 = a_base + min(row0 + 5u, lm) * am;
    let ar6 = a_base + min(row0 + 6u, lm) * am;
    let ar7 = a_base + min(row0 + 7u, lm) * am;
    let bc0 = b_base + min(col + 0u, ln) * bn;
    let bc1 = b_base + min(col + 8u, ln) * bn;
    let bc2 = b_base + min(col + 16u, ln) * bn;
    let bc3 = b_base + min(col + 24u, ln) * bn;
    let bc4 = b_base + min(col + 32u, ln) * bn;
    let bc5 = b_base + min(col + 40u, ln) * bn;
    var acc0_0 = 0.0; var acc0_1 = 0.0; var acc0_2 = 0.0; var acc0_3 = 0.0; var acc0_4 = 0.0; var acc0_5 = 0.0;
    var acc1_0 = 0.0; var acc1_1 = 0.0; var acc1_2 = 0.0; var acc1_3 = 0.0; var acc1_4 = 0.0; var acc1_5 = 0.0;
    var acc2_0 = 0.0; var acc2_1 = 0.0; var acc2_2 = 0.0; var acc2_3 = 0.0; var acc2_4 = 0.0; var acc2_5 = 0.0;
    var acc3_0 = 0.0; var acc3_1 = 0.0; var acc3_2 = 0.0; var acc3_3 = 0.0; var acc3_4 = 0.0; var acc3_5 = 0.0;
    var acc4_0 = 0.0; var acc4_1 = 0.0; var acc4_2 = 0.0; var acc4_3 = 0.0; var acc4_4 = 0.0; var acc4_5 = 0.0;
    var acc5_0 = 0.0; var acc5_1 = 0.0; var acc5_2 = 0.0; var acc5_3 = 0.0; var acc5_4 = 0.0; var acc5_5 = 0.0;
    var acc6_0 = 0.0; var acc6_1 = 0.0; var acc6_2 = 0.0; var acc6_3 = 0.0; var acc6_4 = 0.0; var acc6_5 = 0.0;
    var acc7_0 = 0.0; var acc7_1 = 0.0; var acc7_2 = 0.0; var acc7_3 = 0.0; var acc7_4 = 0.0; var acc7_5 = 0.0;
    let k4 = p.k / 4u;
    for (var k = 0u; k < k4; k++) {
        let w0 = load4_b(bc0 + k);
        let w1 = load4_b(bc1 + k);
        let w2 = load4_b(bc2 + k);
        let w3 = load4_b(bc3 + k);
        let w4 = load4_b(bc4 + k);
        let w5 = load4_b(bc5 + k);
        let x0 = load4_a(ar0 + k);
        acc0_0 += dot(x0, w0); acc0_1 += dot(x0, w1); acc0_2 += dot(x0, w2); acc0_3 += dot(x0, w3); acc0_4 += dot(x0, w4); acc0_5 += dot(x0, w5);
        let x1 = load4_a(ar1 + k);
        acc1_0 += dot(x1, w0); acc1_1 += dot(x1, w1); acc1_2 += dot(x1, w2); acc1_3 += dot(x1, w3); acc1_4 += dot(x1, w4); acc1_5 += dot(x1, w5);
        let x2 = load4_a(ar2 + k);
        acc2_0 += dot(x2, w0); acc2_1 += dot(x2, w1); acc2_2 += dot(x2, w2); acc2_3 += dot(x2, w3); acc2_4 += dot(x2, w4); acc2_5 += dot(x2, w5);
        let x3 = load4_a(ar3 + k);
        acc3_0 += dot(x3, w0); acc3_1 += dot(x3, w1); acc3_2 += dot(x3, w2); acc3_3 += dot(x3, w3); acc3_4 += dot(x3, w4); acc3_5 += dot(x3, w5);
        let x4 = load4_a(ar4 + k);
        acc4_0 += dot(x4, w0); acc4_1 += dot(x4, w1); acc4_2 += dot(x4, w2); acc4_3 += dot(x4, w3); acc4_4 += dot(x4, w4); acc4_5 += dot(x4, w5);
        let x5 = load4_a(ar5 + k);
        acc5_0 += dot(x5, w0); acc5_1 += dot(x5, w1); acc5_2 += dot(x5, w2); acc5_3 += dot(x5, w3); acc5_4 += dot(x5, w4); acc5_5 += dot(x5, w5);
        let x6 = load4_a(ar6 + k);
        acc6_0 += dot(x6, w0); acc6_1 += dot(x6, w1); acc6_2 += dot(x6, w2); acc6_3 += dot(x6, w3); acc6_4 += dot(x6, w4); acc6_5 += dot(x6, w5);
        let x7 = load4_a(ar7 + k);
        acc7_0 += dot(x7, w0); acc7_1 += dot(x7, w1); acc7_2 += dot(x7, w2); acc7_3 += dot(x7, w3); acc7_4 += dot(x7, w4); acc7_5 += dot(x7, w5);
    }
    store(row0 + 0u, col + 0u, c_base, acc0_0);
    store(row0 + 0u, col + 8u, c_base, acc0_1);
    store(row0 + 0u, col + 16u, c_base, acc0_2);
    store(row0 + 0u, col + 24u, c_base, acc0_3);
    store(row0 + 0u, col + 32u, c_base, acc0_4);
    store(row0 + 0u, col + 40u, c_base, acc0_5);
    store(row0 + 1u, col + 0u, c_base, acc1_0);
    store(row0 + 1u, col + 8u, c_base, acc1_1);
    store(row0 + 1u, col + 16u, c_base, acc1_2);
    store(row0 + 1u, col + 24u, c_base, acc1_3);
    store(row0 + 1u, col + 32u, c_base, acc1_4);
    store(row0 + 1u, col + 40u, c_base, acc1_5);
    store(row0 + 2u, col + 0u, c_base, acc2_0);
    store(row0 + 2u, col + 8u, c_base, acc2_1);
    store(row0 + 2u, col + 16u, c_base, acc2_2);
    store(row0 + 2u, col + 24u, c_base, acc2_3);
    store(row0 + 2u, col + 32u, c_base, acc2_4);
    store(row0 + 2u, col + 40u, c_base, acc2_5);
    store(row0 + 3u, col + 0u, c_base, acc3_0);
    store(row0 + 3u, col + 8u, c_base, acc3_1);
    store(row0 + 3u, col + 16u, c_base, acc3_2);
    store(row0 + 3u, col + 24u, c_base, acc3_3);
    store(row0 + 3u, col + 32u, c_base, acc3_4);
    store(row0 + 3u, col + 40u, c_base, acc3_5);
    store(row0 + 4u, col + 0u, c_base, acc4_0);
    store(row0 + 4u, col + 8u, c_base, acc4_1);
    store(row0 + 4u, col + 16u, c_base, acc4_2);
    store(row0 + 4u, col + 24u, c_base, acc4_3);
    store(row0 + 4u, col + 32u, c_base, acc4_4);
    store(row0 + 4u, col + 40u, c_base, acc4_5);
    store(row0 + 5u, col + 0u, c_base, acc5_0);
    store(row0 + 5u, col + 8u, c_base, acc5_1);
    store(row0 + 5u, col + 16u, c_base, acc5_2);
    store(row0 + 5u, col + 24u, c_base, acc5_3);
    store(row0 + 5u, col + 32u, c_base, acc5_4);
    store(row0 + 5u, col + 40u, c_base, acc5_5);
    store(row0 + 6u, col + 0u, c_base, acc6_0);
    store(row0 + 6u, col + 8u, c_base, acc6_1);
    store(row0 + 6u, col + 16u, c_base, acc6_2);
    store(row0 + 6u, col + 24u, c_base, acc6_3);
    store(row0 + 6u, col + 32u, c_base, acc6_4);
    store(row0 + 6u, col + 40u, c_base, acc6_5);
    store(row0 + 7u, col + 0u, c_base, acc7_0);
    store(row0 + 7u, col + 8u, c_base, acc7_1);
    store(row0 + 7u, col + 16u, c_base, acc7_2);
    store(row0 + 7u, col + 24u, c_base, acc7_3);
    store(row0 + 7u, col + 32u, c_base, acc7_4);
    store(row0 + 7u, col + 40u, c_base, acc7_5);
}

fn store4(gm: u32, gn: u32, step: u32, c_base: u32, v: vec4<f32>) {
    store(gm, gn, c_base, v.x);
    store(gm, gn + step, c_base, v.y);
    store(gm, gn + 2u * step, c_base, v.z);
    store(gm, gn + 3u * step, c_base, v.w);
}

// Large tiles (GPUs, big products): a 16×16 workgroup computes a 128×128 tile of C, each
// invocation 8×8 outputs strided by 16 (consecutive across invocations, so shared-memory reads
// and C writes are too). Each k-step brings one vec4 of A and one of B per invocation; the next
// step's vec4s are fetched into registers while this step's shared tiles are in use (two shared
// buffers, one barrier per step), so global latency overlaps the arithmetic. 16 KiB of
// workgroup memory, WebGPU's default limit.
const LT: u32 = 128u;
const LK: u32 = 8u;

var<workgroup> la_: array<array<f32, 1024>, 2>; // [buffer][LK][LT]
var<workgroup> lb_: array<array<f32, 1024>, 2>;

// The vec4 of k at vec4 index `kv` of row `row` (A) or column `row` (B); zeros past the edges
// (K is a multiple of 4, so a vec4 is wholly in or out).
fn fetch_a(base: u32, stride: u32, row: u32, kv: u32, rows: u32, k4: u32) -> vec4<f32> {
    if (row < rows && kv < k4) { return load4_a(base + row * stride + kv); }
    return vec4<f32>(0.0);
}

fn fetch_b(base: u32, stride: u32, row: u32, kv: u32, rows: u32, k4: u32) -> vec4<f32> {
    if (row < rows && kv < k4) { return load4_b(base + row * stride + kv); }
    return vec4<f32>(0.0);
}

// Stores one invocation's vec4s into shared buffer `buf`, k-major: [k][row].
fn put(buf: u32, at: u32, va: vec4<f32>, vb: vec4<f32>) {
    la_[buf][at] = va.x;
    la_[buf][at + LT] = va.y;
    la_[buf][at + 2u * LT] = va.z;
    la_[buf][at + 3u * LT] = va.w;
    lb_[buf][at] = vb.x;
    lb_[buf][at + LT] = vb.y;
    lb_[buf][at + 2u * LT] = vb.z;
    lb_[buf][at + 3u * LT] = vb.w;
}

fn fma_row(a: f32, b0: vec4<f32>, b1: vec4<f32>, lo: ptr<function, vec4<f32>>, hi: ptr<function, vec4<f32>>) {
    *lo = fma(vec4<f32>(a), b0, *lo);
    *hi = fma(vec4<f32>(a), b1, *hi);
}

// Row gm of an invocation's outputs: columns gn + 16·j, j < 8.
fn store_row8(gm: u32, gn: u32, c_base: u32, lo: vec4<f32>, hi: vec4<f32>) {
    store4(gm, gn, 16u, c_base, lo);
    store4(gm, gn + 64u, 16u, c_base, hi);
}

@compute @workgroup_size(16, 16)
fn main_large(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let p = params;
    let tile = locate(wg, nwg);
    if (tile.y >= p.batches) { return; }
    let b0 = tile.y / p.batch1;
    let b1 = tile.y % p.batch1;
    // Offsets and strides in vec4 units (the wrapper checked divisibility).
    let a_base = (p.a_off + b0 * p.a_b0 + b1 * p.a_b1) / 4u;
    let b_base = (p.b_off + b0 * p.b_b0 + b1 * p.b_b1) / 4u;
    let c_base = p.c_off + b0 * p.c_b0 + b1 * p.c_b1;
    let am = p.a_m / 4u;
    let bn = p.b_n / 4u;
    let k4 = p.k / 4u;
    let row0 = tile.x * LT;
    let col0 = wg.x * LT;
    let tx = lid.x;
    let ty = lid.y;
    // What this invocation loads per step: row (of A) and column (of B) `lr`, k vec4 `lq`.
    let lr = li / 2u;
    let lq = li % 2u;
    let at = lq * 4u * LT + lr;

    var acc0l = vec4<f32>(0.0); var acc0h = vec4<f32>(0.0);
    var acc1l = vec4<f32>(0.0); var acc1h = vec4<f32>(0.0);
    var acc2l = vec4<f32>(0.0); var acc2h = vec4<f32>(0.0);
    var acc3l = vec4<f32>(0.0); var acc3h = vec4<f32>(0.0);
    var acc4l = vec4<f32>(0.0); var acc4h = vec4<f32>(0.0);
    var acc5l = vec4<f32>(0.0); var acc5h = vec4<f32>(0.0);
    var acc6l = vec4<f32>(0.0); var acc6h = vec4<f32>(0.0);
    var acc7l = vec4<f32>(0.0); var acc7h = vec4<f32>(0.0);

    let steps = (k4 + 1u) / 2u;
    var va = fetch_a(a_base, am, row0 + lr, lq, p.m, k4);
    var vb = fetch_b(b_base, bn, col0 + lr, lq, p.n, k4);
    put(0u, at, va, vb);
    workgroupBarrier();
    for (var s = 0u; s < steps; s++) {
        let cur = s % 2u;
        let more = s + 1u < steps;
        if (more) {
            let kv = (s + 1u) * 2u + lq;
            va = fetch_a(a_base, am, row0 + lr, kv, p.m, k4);
            vb = fetch_b(b_base, bn, col0 + lr, kv, p.n, k4);
        }
        for (var kk = 0u; kk < LK; kk++) {
            let ao = kk * LT + ty;
            let bo = kk * LT + tx;
            let bl = vec4<f32>(lb_[cur][bo], lb_[cur][bo + 16u], lb_[cur][bo + 32u], lb_[cur][bo + 48u]);
            let bh = vec4<f32>(lb_[cur][bo + 64u], lb_[cur][bo + 80u], lb_[cur][bo + 96u], lb_[cur][bo + 112u]);
            fma_row(la_[cur][ao], bl, bh, &acc0l, &acc0h);
            fma_row(la_[cur][ao + 16u], bl, bh, &acc1l, &acc1h);
            fma_row(la_[cur][ao + 32u], bl, bh, &acc2l, &acc2h);
            fma_row(la_[cur][ao + 48u], bl, bh, &acc3l, &acc3h);
            fma_row(la_[cur][ao + 64u], bl, bh, &acc4l, &acc4h);
            fma_row(la_[cur][ao + 80u], bl, bh, &acc5l, &acc5h);
            fma_row(la_[cur][ao + 96u], bl, bh, &acc6l, &acc6h);
            fma_row(la_[cur][ao + 112u], bl, bh, &acc7l, &acc7h);
        }
        if (more) { put(1u - cur, at, va, vb); }
        workgroupBarrier();
    }
    let gm = row0 + ty;
    let gn = col0 + tx;
    store_row8(gm, gn, c_base, acc0l, acc0h);
    store_row8(gm + 16u, gn, c_base, acc1l, acc1h);
    store_row8(gm + 32u, gn, c_base, acc2l, acc2h);
    store_row8(gm + 48u, gn, c_base, acc3l, acc3h);
    store_row8(gm + 64u, gn, c_base, acc4l, acc4h);
    store_row8(gm + 80u, gn, c_base, acc5l, acc5h);
    store_row8(gm + 96u, gn, c_base, acc6l, acc6h);
    store_row8(gm + 112u, gn, c_base, acc7l, acc7h);
}
