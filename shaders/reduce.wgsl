// Workgroup tree reduction, prepended by the Rust wrappers of every kernel that reduces a row in
// one workgroup (softmax, layer_norm, embedding). Those kernels declare @workgroup_size(128) and
// stride their loops by WG; every invocation of the workgroup must call in uniform control flow.

const WG: u32 = 128u;
var<workgroup> red: array<f32, WG>;

// Combines every invocation's `v` (sum, or max when `is_max`) and returns the result to all.
fn workgroup_reduce(li: u32, v: f32, is_max: bool) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (li < s) {
            if (is_max) { red[li] = max(red[li], red[li + s]); } else { red[li] = red[li] + red[li + s]; }
        }
        workgroupBarrier();
    }
    let r = red[0];
    // A second call may overwrite `red` only after everyone has read this result.
    workgroupBarrier();
    return r;
}

fn workgroup_sum(li: u32, v: f32) -> f32 { return workgroup_reduce(li, v, false); }
fn workgroup_max(li: u32, v: f32) -> f32 { return workgroup_reduce(li, v, true); }
