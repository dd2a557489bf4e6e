// Elementwise activations. `apply_act` is also compiled into the matmul epilogue.
// Codes: 0 identity, 1 gelu (exact, erf), 2 gelu_new (tanh form), 3 relu, 4 tanh.

// erf with absolute error below 1e-7 over all of f32: a Maclaurin series near zero, and
// erfc(x) = t·exp(-x² + P(t)) (a Chebyshev fit with fractional error < 1.2e-7) further out.
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    if (ax < 0.5) {
        let x2 = x * x;
        // 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)), to n = 6.
        var s = -1.0 / 9360.0;
        s = s * x2 + 1.0 / 1320.0;
        s = s * x2 - 1.0 / 216.0;
        s = s * x2 + 1.0 / 42.0;
        s = s * x2 - 1.0 / 10.0;
        s = s * x2 + 1.0 / 3.0;
        s = s * x2 - 1.0;
        return -x * s * 1.1283791670955126;
    }
    let t = 1.0 / (1.0 + 0.5 * ax);
    var p = 0.17087277;
    p = p * t - 0.82215223;
    p = p * t + 1.48851587;
    p = p * t - 1.13520398;
    p = p * t + 0.27886807;
    p = p * t - 0.18628806;
    p = p * t + 0.09678418;
    p = p * t + 0.37409196;
    p = p * t + 1.00002368;
    p = p * t - 1.26551223;
    let erfc = t * exp(-ax * ax + p);
    return sign(x) * (1.0 - erfc);
}

fn tanh_stable(x: f32) -> f32 {
    // Some drivers compute tanh through exp(2x), which overflows to NaN for large |x|;
    // tanh(±15) is ±1 in f32 anyway.
    return tanh(clamp(x, -15.0, 15.0));
}

fn apply_act(x: f32, code: u32) -> f32 {
    switch code {
        case 1u: { return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476)); }
        case 2u: {
            let inner = 0.7978845608028654 * (x + 0.044715 * x * x * x);
            return 0.5 * x * (1.0 + tanh_stable(inner));
        }
        case 3u: { return max(x, 0.0); }
        case 4u: { return tanh_stable(x); }
        default: { return x; }
    }
}

// ---- standalone entry (the functions above are shared with matmul) ----
struct Params { n: u32, code: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.x + wg.y * nwg.x) * 256u + li;
    if (i < params.n) {
        x[i] = apply_act(x[i], params.code);
    }
}
