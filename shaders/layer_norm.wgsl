// out = LayerNorm(x + residual) · gamma + beta over rows of `n` (and, with has_sum, the sum
// x + residual itself into `sum`: a pre-LN model's residual stream), two-pass (mean, then the mean of
// squared deviations) in f32 so large means do not cancel. One workgroup per row.
// The Rust wrapper prepends shaders/reduce.wgsl (WG, workgroup_sum) and the declaration of `x`
// (load_x: f32, or f16 for the f16 activations of --precision f16). Statistics stay f32.

struct Params { rows: u32, n: u32, eps: u32, has_res: u32, has_sum: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> res: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> sum: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows) { return; }
    let base = row * params.n;
    let nf = f32(params.n);

    var s = 0.0;
    for (var i = li; i < params.n; i += WG) {
        var v = load_x(base + i);
        if (params.has_res != 0u) { v += res[base + i]; }
        out[base + i] = v;
        if (params.has_sum != 0u) { sum[base + i] = v; }
        s += v;
    }
    let mean = workgroup_sum(li, s) / nf;

    var q = 0.0;
    for (var i = li; i < params.n; i += WG) {
        let d = out[base + i] - mean;
        q += d * d;
    }
    let var_ = workgroup_sum(li, q) / nf;
    let inv = inverseSqrt(var_ + bitcast<f32>(params.eps));

    for (var i = li; i < params.n; i += WG) {
        out[base + i] = (out[base + i] - mean) * inv * gamma[i] + beta[i];
    }
}

// Row-per-invocation variant for CPU adapters (lavapipe): no workgroup memory, no barriers.
// A running sum over a whole row loses precision where the tree reduction does not, so the
// mean is taken of the row shifted by its first element, in four interleaved partial sums.
@compute @workgroup_size(64)
fn main_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= params.rows) { return; }
    let base = row * params.n;
    let nf = f32(params.n);
    var s = vec4<f32>(0.0);
    var shift = 0.0;
    for (var i = 0u; i < params.n; i++) {
        var v = load_x(base + i);
        if (params.has_res != 0u) { v += res[base + i]; }
        out[base + i] = v;
        if (params.has_sum != 0u) { sum[base + i] = v; }
        if (i == 0u) { shift = v; }
        s[i % 4u] += v - shift;
    }
    let mean = shift + (s.x + s.y + s.z + s.w) / nf;
    var q = vec4<f32>(0.0);
    for (var i = 0u; i < params.n; i++) {
        let d = out[base + i] - mean;
        q[i % 4u] += d * d;
    }
    let inv = inverseSqrt((q.x + q.y + q.z + q.w) / nf + bitcast<f32>(params.eps));
    for (var i = 0u; i < params.n; i++) {
        out[base + i] = (out[base + i] - mean) * inv * gamma[i] + beta[i];
    }
}
