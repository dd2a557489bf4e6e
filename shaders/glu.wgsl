// Gated linear unit over rows of 2·width: out[r, i] = act(x[r, i]) · x[r, width + i] (the input
// and gate halves of one projection: ModernBERT's GeGLU). f32 arithmetic whatever the storage.
// The Rust wrapper prepends the activation functions (shaders/activation.wgsl, apply_act) and the
// declarations of `x` (load_x) and `out` (store_out), f32 or f16.

struct Params { rows: u32, width: u32, code: u32 }

@group(0) @binding(0) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + li;
    if (i >= params.rows * params.width) { return; }
    let r = i / params.width;
    let c = i % params.width;
    let at = r * 2u * params.width + c;
    store_out(i, apply_act(load_x(at), params.code) * load_x(at + params.width));
}
