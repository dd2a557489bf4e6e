// Rotary position embedding in the "rotate half" form, in place on the Q and K parts of a packed
// [batch, seq, row] projection (Q at column 0, K at `hidden`, heads of `2·half` columns side by
// side): for token t, head h and pair p < half,
//   (x[p], x[p + half]) ← (x[p]·cos − x[p + half]·sin, x[p + half]·cos + x[p]·sin),
// with cos and sin of angle (t, p) read from `table` (cos rows [seq, half], then sin rows).
// The Rust wrapper prepends the declaration of `qkv` (read_write, f32 or f16, with store_qkv).

struct Params { tokens: u32, seq: u32, heads: u32, half: u32, row: u32, hidden: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> table: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let half = params.half;
    // One invocation per (token, Q or K, head, pair).
    if (i >= params.tokens * 2u * params.heads * half) { return; }
    let p = i % half;
    let h = (i / half) % params.heads;
    let part = (i / (half * params.heads)) % 2u;
    let tok = i / (half * params.heads * 2u);
    let t = tok % params.seq;
    let at = tok * params.row + part * params.hidden + h * 2u * half + p;
    let x1 = f32(qkv[at]);
    let x2 = f32(qkv[at + half]);
    let c = table[t * half + p];
    let s = table[params.seq * half + t * half + p];
    store_qkv(at, x1 * c - x2 * s);
    store_qkv(at + half, x2 * c + x1 * s);
}
