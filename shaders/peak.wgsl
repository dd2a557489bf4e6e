// Peak-rate kernels for `wgformer bench ceilings`: they measure the adapter, not a model op.
// The Rust wrapper (src/ops/peak.rs) compiles the common part with one section:
//   fma:  FMA throughput; prepended with `alias S = f32;` or `enable f16; alias S = f16;`.
//   read: streaming read bandwidth (vec4<f32> loads, summed so no load can be dropped).
//   fill: writes the pattern the read kernel is timed on, on the GPU (no 1 GiB upload).
// Every section runs `params.count` invocations in workgroups of 256, split over x and y.

struct Params { count: u32, loops: u32, mul: f32, add: f32, len4: u32 }

@group(0) @binding(0) var<uniform> params: Params;

const WGP: u32 = 256u;

fn invocation(wg: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * WGP + li;
}

// ---- fma section
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

// Chain j of invocation i starts at ((7i + 13j) mod 64) / 64: exact in f16 and f32.
fn start(i: u32, j: u32) -> S {
    return S(f32((i * 7u + j * 13u) & 63u) / 64.0);
}

fn start4(i: u32, k: u32) -> vec4<S> {
    return vec4<S>(start(i, 4u * k), start(i, 4u * k + 1u), start(i, 4u * k + 2u), start(i, 4u * k + 3u));
}

// 32 independent chains x ← fma(x, mul, add) per invocation (8 vec4 accumulators), 4 steps of
// each per loop iteration; `mul` and `add` come from the uniform block so nothing folds. The
// chains' final values are summed and written: a dropped step changes the result.
@compute @workgroup_size(256)
fn fma_peak(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = invocation(wg, nwg, li);
    if (i >= params.count) { return; }
    let m = vec4<S>(S(params.mul));
    let c = vec4<S>(S(params.add));
    var a0 = start4(i, 0u);
    var a1 = start4(i, 1u);
    var a2 = start4(i, 2u);
    var a3 = start4(i, 3u);
    var a4 = start4(i, 4u);
    var a5 = start4(i, 5u);
    var a6 = start4(i, 6u);
    var a7 = start4(i, 7u);
    for (var l = 0u; l < params.loops; l++) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
    }
    let s = ((vec4<f32>(a0) + vec4<f32>(a1)) + (vec4<f32>(a2) + vec4<f32>(a3)))
          + ((vec4<f32>(a4) + vec4<f32>(a5)) + (vec4<f32>(a6) + vec4<f32>(a7)));
    out[i] = (s.x + s.y) + (s.z + s.w);
}

// ---- read section
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Invocation i sums the vec4s i, i + count, i + 2·count, ... of x (coalesced: neighbours read
// neighbours), four loads in flight per iteration, and writes the sum of its lanes.
@compute @workgroup_size(256)
fn read_peak(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let i = invocation(wg, nwg, li);
    if (i >= params.count) { return; }
    let t = params.count;
    let n = params.len4;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var k = i;
    while (k + 3u * t < n) {
        a0 += x[k];
        a1 += x[k + t];
        a2 += x[k + 2u * t];
        a3 += x[k + 3u * t];
        k += 4u * t;
    }
    while (k < n) {
        a0 += x[k];
        k += t;
    }
    let s = (a0 + a1) + (a2 + a3);
    out[i] = (s.x + s.y) + (s.z + s.w);
}

// ---- fill section
@group(0) @binding(1) var<storage, read_write> xw: array<vec4<f32>>;

// Element e of the flat buffer holds (e mod 61) / 4.
fn pattern(e: u32) -> f32 {
    return f32(e % 61u) * 0.25;
}

@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = invocation(wg, nwg, li);
    if (i >= params.count) { return; }
    for (var k = i; k < params.len4; k += params.count) {
        let e = 4u * k;
        xw[k] = vec4<f32>(pattern(e), pattern(e + 1u), pattern(e + 2u), pattern(e + 3u));
    }
}
