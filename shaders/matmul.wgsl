// Batched, strided C = act(alpha · A·Bᵀ + bias), f32 accumulation.
// A(m, k) and B(n, k) are read through element strides, so one kernel serves X·Wᵀ with weights as
// Hugging Face stores them ([out, in]), Q·Kᵀ and P·V straight out of the fused QKV buffer (no
// transposes), and first-token gathers (a row stride that skips tokens).
// The Rust wrapper prepends the declarations of `b`, `bias` (load_b, load_bias: f32, packed f16
// or native f16) and the activation functions.
//
// Tiling: a 16×16 workgroup computes a 64×64 tile of C; each thread owns 4×4 outputs strided by
// 16 so shared-memory reads and C writes are consecutive across neighbouring threads.

struct Params {
    m: u32, n: u32, k: u32, batch1: u32,
    a_off: u32, a_b0: u32, a_b1: u32, a_m: u32, a_k: u32,
    b_off: u32, b_b0: u32, b_b1: u32, b_n: u32, b_k: u32,
    c_off: u32, c_b0: u32, c_b1: u32, c_m: u32, c_n: u32,
    alpha: u32, has_bias: u32, act: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> as_: array<f32, 1024>; // [TK][TM]
var<workgroup> bs_: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let p = params;
    let b0 = wg.z / p.batch1;
    let b1 = wg.z % p.batch1;
    let a_base = p.a_off + b0 * p.a_b0 + b1 * p.a_b1;
    let b_base = p.b_off + b0 * p.b_b0 + b1 * p.b_b1;
    let c_base = p.c_off + b0 * p.c_b0 + b1 * p.c_b1;
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let tx = lid.x;
    let ty = lid.y;

    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }

    let ntiles = (p.k + TK - 1u) / TK;
    for (var t = 0u; t < ntiles; t++) {
        let k0 = t * TK;
        // 1024 elements per tile, 4 per thread; k fastest so global reads follow memory order
        // when k is the contiguous axis.
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            let r = idx / TK;
            let kk = idx % TK;
            let gk = k0 + kk;
            let gm = row0 + r;
            var va = 0.0;
            if (gm < p.m && gk < p.k) { va = a[a_base + gm * p.a_m + gk * p.a_k]; }
            as_[kk * TM + r] = va;
            let gn = col0 + r;
            var vb = 0.0;
            if (gn < p.n && gk < p.k) { vb = load_b(b_base + gn * p.b_n + gk * p.b_k); }
            bs_[kk * TN + r] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = as_[kk * TM + ty + 16u * i];
                bv[i] = bs_[kk * TN + tx + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(av[i], bv[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }

    let alpha = bitcast<f32>(p.alpha);
    for (var i = 0u; i < 4u; i++) {
        let gm = row0 + ty + 16u * i;
        if (gm >= p.m) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let gn = col0 + tx + 16u * j;
            if (gn >= p.n) { continue; }
            var v = acc[i * 4u + j] * alpha;
            if (p.has_bias != 0u) { v += load_bias(gn); }
            c[c_base + gm * p.c_m + gn * p.c_n] = apply_act(v, p.act);
        }
    }
}
