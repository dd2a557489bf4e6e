// Disentangled-attention bias (DeBERTa): for each batch·head z, query i and key j,
//   out[z, i, j] = c2p[z, i, t] + p2c[z, j, t],   t = idx[i − j + seq − 1],
// where c2p[z, i, r] = Q_i · PosK_r and p2c[z, j, r] = K_j · PosQ_r were computed for every
// relative-position row r of a window by two batched matmuls, and `idx` maps each offset i − j
// to its (bucketed, clamped) row of that window. Either term may be absent (`flags`).
// The Rust wrapper prepends `c2p`, `p2c` with load_c2p/load_p2c (f32 or f16).

struct Params { bh: u32, seq: u32, width: u32, flags: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let e = (wg.x + wg.y * nwg.x) * 256u + li;
    let s = params.seq;
    if (e >= params.bh * s * s) { return; }
    let j = e % s;
    let i = (e / s) % s;
    let z = e / (s * s);
    let t = idx[i + s - 1u - j];
    var v = 0.0;
    // Both bindings are referenced whatever the flags, so they stay in the pipeline's layout.
    if ((params.flags & 1u) != 0u) { v += load_c2p((z * s + i) * params.width + t); }
    if ((params.flags & 2u) != 0u) { v += load_p2c((z * s + j) * params.width + t); }
    out[e] = v;
}
