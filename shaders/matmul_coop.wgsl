// Matmul on cooperative matrices (tensor cores): the same C = act(alpha · A·Bᵀ + bias) with the
// same strides and epilogue as matmul.wgsl, whose common part (Params, locate, store) the Rust
// wrapper appends after the declarations of `b` and `bias` and the activation functions.
// The wrapper also defines F (fragment size: 8 or 16), SG (the adapter's largest subgroup) and
// WG = 4·SG before this text.
//
// A workgroup computes a TM×TN = 4F×4F tile of C. Each k step stages a TM×TK tile of A and a
// TN×TK tile of B in workgroup memory as f16 (bounds zero-filled, so any M, N, K works), then
// subgroup s computes the 2F×2F block (s / 2, s % 2) of the tile as 2×2 fragments with f32
// accumulators. naga requires cooperative operations in uniform control flow, so every subgroup
// runs them; when the adapter's subgroups are smaller than SG there are more than four and the
// extra ones repeat a block without storing it.

const TM: u32 = 4u * F;
const TN: u32 = 4u * F;
const TK: u32 = 2u * F;
// Row pitch of the staged tiles, padded by 8 halves (16 bytes) against bank conflicts.
const TKP: u32 = TK + 8u;

var<workgroup> as_: array<f16, TM * TKP>; // [TM][TKP], k fastest
var<workgroup> bs_: array<f16, TN * TKP>; // [TN][TKP], k fastest
// One F×F f32 fragment per possible subgroup (up to 4·SG/SGMIN of them), for the epilogue.
var<workgroup> cs_: array<f32, NSG * F * F>;

@compute @workgroup_size(WG)
fn main_coop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32,
             @builtin(subgroup_id) sid: u32,
             @builtin(subgroup_invocation_id) lane: u32,
             @builtin(subgroup_size) sg_size: u32) {
    let p = params;
    let tile = locate(wg, nwg);
    // Workgroups past the last batch compute the last one again and store nothing (naga counts
    // any early return as non-uniform control flow, which cooperative operations forbid).
    let live = tile.y < p.batches;
    let batch = min(tile.y, p.batches - 1u);
    let b0 = batch / p.batch1;
    let b1 = batch % p.batch1;
    let a_base = p.a_off + b0 * p.a_b0 + b1 * p.a_b1;
    let b_base = p.b_off + b0 * p.b_b0 + b1 * p.b_b1;
    let c_base = p.c_off + b0 * p.c_b0 + b1 * p.c_b1;
    let row0 = tile.x * TM;
    let col0 = wg.x * TN;
    let block = sid % 4u;
    let wr = (block / 2u) * 2u * F; // first row of this subgroup's block within the tile
    let wc = (block % 2u) * 2u * F; // first column

    var acc00 = ZERO;
    var acc01 = ZERO;
    var acc10 = ZERO;
    var acc11 = ZERO;

    let ntiles = (p.k + TK - 1u) / TK;
    for (var t = 0u; t < ntiles; t++) {
        let k0 = t * TK;
        for (var e = li; e < TM * TK; e += WG) {
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            let gm = row0 + r;
            var va = 0.0;
            if (gm < p.m && gk < p.k) { va = load_a(a_base + gm * p.a_m + gk * p.a_k); }
            as_[r * TKP + kk] = f16(va);
            let gn = col0 + r;
            var vb = 0.0;
            if (gn < p.n && gk < p.k) { vb = load_b(b_base + gn * p.b_n + gk * p.b_k); }
            bs_[r * TKP + kk] = f16(vb);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk += F) {
            // Offsets computed first: an index expression inside a coop pointer argument
            // trips naga 30's SPIR-V backend.
            let oa0 = wr * TKP + kk;
            let oa1 = (wr + F) * TKP + kk;
            let ob0 = wc * TKP + kk;
            let ob1 = (wc + F) * TKP + kk;
            // A fragment: rows of A, k along a row (row-major, "T"). B fragment: B is K×N with
            // element (k, n) at n·TKP + k, i.e. column-major.
            let fa0 = coopLoadT<FRAG_A>(&as_[oa0], TKP);
            let fa1 = coopLoadT<FRAG_A>(&as_[oa1], TKP);
            let fb0 = coopLoad<FRAG_B>(&bs_[ob0], TKP);
            let fb1 = coopLoad<FRAG_B>(&bs_[ob1], TKP);
            acc00 = coopMultiplyAdd(fa0, fb0, acc00);
            acc01 = coopMultiplyAdd(fa0, fb1, acc01);
            acc10 = coopMultiplyAdd(fa1, fb0, acc10);
            acc11 = coopMultiplyAdd(fa1, fb1, acc11);
        }
        workgroupBarrier();
    }

    // Epilogue, one fragment at a time through this subgroup's scratch: alpha, bias, activation
    // and the strided, bounds-checked store of the portable kernel.
    let so = sid * F * F;
    let own = sid < 4u && live;
    coopStoreT(acc00, &cs_[so], F);
    workgroupBarrier();
    if (own) { spill(so, row0 + wr, col0 + wc, c_base, lane, sg_size); }
    workgroupBarrier();
    coopStoreT(acc01, &cs_[so], F);
    workgroupBarrier();
    if (own) { spill(so, row0 + wr, col0 + wc + F, c_base, lane, sg_size); }
    workgroupBarrier();
    coopStoreT(acc10, &cs_[so], F);
    workgroupBarrier();
    if (own) { spill(so, row0 + wr + F, col0 + wc, c_base, lane, sg_size); }
    workgroupBarrier();
    coopStoreT(acc11, &cs_[so], F);
    workgroupBarrier();
    if (own) { spill(so, row0 + wr + F, col0 + wc + F, c_base, lane, sg_size); }
}

// Writes the F×F fragment staged at cs_[so..] (row-major) to C at (gm0, gn0).
fn spill(so: u32, gm0: u32, gn0: u32, c_base: u32, lane: u32, sg_size: u32) {
    for (var e = lane; e < F * F; e += sg_size) {
        store(gm0 + e / F, gn0 + e % F, c_base, cs_[so + e]);
    }
}
