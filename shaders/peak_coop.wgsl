// Cooperative-matrix throughput for `wgformer bench ceilings`: one subgroup per workgroup runs
// four independent chains c_j ← A·B_j + c_j of F×F×F multiply-adds (f16 inputs, f32
// accumulators) from registers, then writes their sum. The Rust wrapper (src/ops/peak.rs)
// defines F, SG (the subgroup size the workgroup is) and the coop_mat type names first.
//
// A is all `x` and B_j all `(j + 1)·x`, exact in f16; after L steps every element of chain j is
// L·F·(j + 1)·x², exact in f32 for the step counts used, so a dropped step changes the result.

struct Params { loops: u32, x: f32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

var<workgroup> tile: array<f16, 5u * F * F>;
var<workgroup> res: array<f32, F * F>;

@compute @workgroup_size(SG)
fn coop_peak(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let x = f16(params.x);
    for (var e = li; e < F * F; e += SG) {
        tile[e] = x;
        tile[F * F + e] = x;
        tile[2u * F * F + e] = 2.0h * x;
        tile[3u * F * F + e] = 3.0h * x;
        tile[4u * F * F + e] = 4.0h * x;
    }
    workgroupBarrier();
    let o1 = F * F;
    let o2 = 2u * F * F;
    let o3 = 3u * F * F;
    let o4 = 4u * F * F;
    let a = coopLoad<FRAG_A>(&tile[0], F);
    let b1 = coopLoad<FRAG_B>(&tile[o1], F);
    let b2 = coopLoad<FRAG_B>(&tile[o2], F);
    let b3 = coopLoad<FRAG_B>(&tile[o3], F);
    let b4 = coopLoad<FRAG_B>(&tile[o4], F);
    var c1 = ZERO;
    var c2 = ZERO;
    var c3 = ZERO;
    var c4 = ZERO;
    for (var l = 0u; l < params.loops; l++) {
        c1 = coopMultiplyAdd(a, b1, c1);
        c2 = coopMultiplyAdd(a, b2, c2);
        c3 = coopMultiplyAdd(a, b3, c3);
        c4 = coopMultiplyAdd(a, b4, c4);
    }
    // Sum the chains through workgroup memory (one subgroup: barriers order its own writes).
    coopStoreT(c1, &res[0], F);
    workgroupBarrier();
    let g = wg.x + wg.y * nwg.x;
    for (var e = li; e < F * F; e += SG) { out[g * F * F + e] = res[e]; }
    workgroupBarrier();
    coopStoreT(c2, &res[0], F);
    workgroupBarrier();
    for (var e = li; e < F * F; e += SG) { out[g * F * F + e] += res[e]; }
    workgroupBarrier();
    coopStoreT(c3, &res[0], F);
    workgroupBarrier();
    for (var e = li; e < F * F; e += SG) { out[g * F * F + e] += res[e]; }
    workgroupBarrier();
    coopStoreT(c4, &res[0], F);
    workgroupBarrier();
    for (var e = li; e < F * F; e += SG) { out[g * F * F + e] += res[e]; }
}
