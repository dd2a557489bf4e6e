// Row softmax over the last axis, in place, with an optional additive mask row per group of
// rows (attention: one mask row per sequence, shared by every head and query).
// Numerically stable: subtracts the row max before exp. One workgroup per row.
// The Rust wrapper prepends shaders/reduce.wgsl (WG, workgroup_max, workgroup_sum).

struct Params { rows: u32, len: u32, rows_per_mask: u32, has_mask: u32, mask_off: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.x + wg.y * nwg.x;
    if (row >= params.rows) { return; }
    let base = row * params.len;
    let mbase = params.mask_off + (row / params.rows_per_mask) * params.len;

    var m = -3.4028234e38; // -f32::MAX (see attention.wgsl's NEG)
    for (var i = li; i < params.len; i += WG) {
        var v = x[base + i];
        if (params.has_mask != 0u) { v += mask[mbase + i]; }
        x[base + i] = v;
        m = max(m, v);
    }
    m = workgroup_max(li, m);

    var s = 0.0;
    for (var i = li; i < params.len; i += WG) {
        let e = exp(x[base + i] - m);
        x[base + i] = e;
        s += e;
    }
    s = workgroup_sum(li, s);

    let inv = 1.0 / s;
    for (var i = li; i < params.len; i += WG) {
        x[base + i] = x[base + i] * inv;
    }
}

// Row-per-invocation variant for CPU adapters (lavapipe): no workgroup memory and no barriers,
// which there switch coroutines; each invocation walks its own row three times.
@compute @workgroup_size(64)
fn main_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= params.rows) { return; }
    let base = row * params.len;
    let mbase = params.mask_off + (row / params.rows_per_mask) * params.len;
    var m = -3.4028234e38; // -f32::MAX (see attention.wgsl's NEG)
    for (var i = 0u; i < params.len; i++) {
        var v = x[base + i];
        if (params.has_mask != 0u) { v += mask[mbase + i]; }
        x[base + i] = v;
        m = max(m, v);
    }
    // Four interleaved partial sums: closer to the tree reduction's accuracy than one.
    var s = vec4<f32>(0.0);
    for (var i = 0u; i < params.len; i++) {
        let e = exp(x[base + i] - m);
        x[base + i] = e;
        s[i % 4u] += e;
    }
    let inv = 1.0 / (s.x + s.y + s.z + s.w);
    for (var i = 0u; i < params.len; i++) {
        x[base + i] = x[base + i] * inv;
    }
}
