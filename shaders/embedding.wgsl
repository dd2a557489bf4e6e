// Embedding gather fused with LayerNorm: for each token,
// out = LayerNorm(word[id] (+ position[pos_id]) (+ token_type[type_id])) · gamma + beta.
// `idx` holds three rows of `tokens` u32: ids, position ids, token type ids.
// A word table split over several bindings (larger than one) is first gathered piece by piece
// into `out` by `gather` (rows lo..lo+rows of the table in `word`); `main` then reads the word
// vectors from `out` (`gathered` set) instead of the table.
// The Rust wrapper prepends `word`, `pos`, `typ` with load_word/load_pos/load_typ (f32 or f16)
// and shaders/reduce.wgsl (WG, workgroup_sum).

struct Params { tokens: u32, dim: u32, has_type: u32, eps: u32, has_pos: u32, gathered: u32, lo: u32, rows: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = wg.x + wg.y * nwg.x;
    if (t >= params.tokens) { return; }
    let d = params.dim;
    let id = idx[t];
    let pid = idx[params.tokens + t];
    let tid = idx[2u * params.tokens + t];
    let base = t * d;

    var s = 0.0;
    for (var i = li; i < d; i += WG) {
        // Same order of additions either way: a split table gives bit-identical outputs.
        var v: f32;
        if (params.gathered != 0u) { v = out[base + i]; } else { v = load_word(id * d + i); }
        if (params.has_pos != 0u) { v += load_pos(pid * d + i); }
        if (params.has_type != 0u) { v += load_typ(tid * d + i); }
        out[base + i] = v;
        s += v;
    }
    let mean = workgroup_sum(li, s) / f32(d);
    var q = 0.0;
    for (var i = li; i < d; i += WG) {
        let dv = out[base + i] - mean;
        q += dv * dv;
    }
    let inv = inverseSqrt(workgroup_sum(li, q) / f32(d) + bitcast<f32>(params.eps));
    for (var i = li; i < d; i += WG) {
        out[base + i] = (out[base + i] - mean) * inv * gamma[i] + beta[i];
    }
}

// Copies the word vectors of tokens whose id falls in this piece's rows into `out`.
@compute @workgroup_size(128)
fn gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let t = wg.x + wg.y * nwg.x;
    if (t >= params.tokens) { return; }
    let id = idx[t];
    if (id < params.lo || id - params.lo >= params.rows) { return; }
    let d = params.dim;
    for (var i = li; i < d; i += WG) {
        out[t * d + i] = load_word((id - params.lo) * d + i);
    }
}
