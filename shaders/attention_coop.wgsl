// Fused attention on cooperative matrices (tensor cores): the same softmax(Q·Kᵀ·scale + bias +
// mask)·V, extras and layouts as attention.wgsl, whose common part (Params, mask, bias, block,
// visible, bias_at) the Rust wrapper puts before this text, after the loads of q, k, v
// (load_qs...), store_out, and the constants D (head dim), DP (D rounded up to 2F), F (fragment
// size), WG = 4·SG (SG: the adapter's largest subgroup), NSG (room for every subgroup) and the
// fragment types FRAG_A, FRAG_B (f16), FRAG_C (f32) and ZERO.
//
// A workgroup takes BQ = 2F queries of one (batch, head). Per block of BK = 2F keys:
//   1. K and V rows are staged in workgroup memory as f16 (Q was staged once), zero past the
//      edges;
//   2. subgroup s computes the F×F score fragment s % 4 of the 2×2 block, S = Q·Kᵀ, on
//      cooperative matrices (f16 products, f32 sums) into its scratch slot;
//   3. one invocation per query row applies scale, bias and mask, updates the running max and
//      sum (the online softmax), rescales its row of the f32 output tile O by exp(m_old − m_new)
//      and writes its probabilities as f16;
//   4. the subgroups add P·V into O, fragment by fragment (loaded, multiplied-added, stored).
// naga requires cooperative operations in uniform control flow: every subgroup runs them; when
// the adapter's subgroups are smaller than SG there are more than four, and the extra ones
// repeat a fragment into scratch that nobody reads.

const BQ: u32 = 2u * F;
const BK: u32 = 2u * F;
// Row pitches of the f16 tiles, padded by 8 halves (16 bytes) against bank conflicts.
const DPP: u32 = DP + 8u;
const BKP: u32 = BK + 8u;

var<workgroup> qt_: array<f16, BQ * DPP>; // [query][column]
var<workgroup> kt_: array<f16, BK * DPP>; // [key][column]
var<workgroup> vt_: array<f16, BK * DPP>; // [key][column]
var<workgroup> st_: array<f32, NSG * F * F>; // a score fragment per subgroup, row-major
var<workgroup> pt_: array<f16, BQ * BKP>; // [query][key]
var<workgroup> ot_: array<f32, BQ * DP + F * F>; // [query][column], then the extras' scratch

@compute @workgroup_size(WG)
fn main_coop(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) li: u32,
             @builtin(subgroup_id) sid: u32) {
    let p = params;
    let bk = block(wg, nwg, BQ);
    let live = bk.valid;
    let scale = bitcast<f32>(p.scale);
    let qb = p.q_off + bk.b * p.q_b + bk.h * p.q_h;
    let kb = p.k_off + bk.b * p.k_b + bk.h * p.k_h;
    let vb = p.v_off + bk.b * p.v_b + bk.h * p.v_h;
    for (var e = li; e < BQ * DP; e += WG) {
        let r = e / DP;
        let c = e % DP;
        let i = bk.q0 + r;
        var x = 0.0;
        if (live && i < p.seq && c < D) { x = load_qs(qb + i * p.q_t + c); }
        qt_[r * DPP + c] = f16(x);
        ot_[e] = 0.0;
    }
    // Invocation li < BQ owns query row li: its running max and sum.
    let own = li < BQ;
    let i = min(bk.q0 + li, p.seq - 1u);
    var m = NEG;
    var l = 0.0;
    let frag = sid % 4u;
    let fr = (frag / 2u) * F;
    let fc = (frag % 2u) * F;
    let slot = sid * F * F;
    let extra = sid >= 4u;
    for (var j0 = bk.lo; j0 < bk.hi; j0 += BK) {
        for (var e = li; e < BK * DP; e += WG) {
            let r = e / DP;
            let c = e % DP;
            let j = j0 + r;
            var kx = 0.0;
            var vx = 0.0;
            if (live && j < bk.hi && c < D) {
                kx = load_ks(kb + j * p.k_t + c);
                vx = load_vs(vb + j * p.v_t + c);
            }
            kt_[r * DPP + c] = f16(kx);
            vt_[r * DPP + c] = f16(vx);
        }
        workgroupBarrier();
        // Offsets computed first: an index expression inside a coop pointer argument trips
        // naga 30's SPIR-V backend.
        var s = ZERO;
        for (var c = 0u; c < DP; c += F) {
            let oq = fr * DPP + c;
            let ok = fc * DPP + c;
            // A: query rows, columns along a row (row-major). B: (column, key) at key·DPP +
            // column, i.e. column-major.
            let fa = coopLoadT<FRAG_A>(&qt_[oq], DPP);
            let fb = coopLoad<FRAG_B>(&kt_[ok], DPP);
            s = coopMultiplyAdd(fa, fb, s);
        }
        coopStoreT(s, &st_[slot], F);
        workgroupBarrier();
        if (own) {
            // Row li lies in fragments 2·(li / F) and 2·(li / F) + 1, row li % F of each.
            let base = (li / F) * 2u * F * F + (li % F) * F;
            var mx = m;
            for (var r = 0u; r < BK; r++) {
                let at = base + (r / F) * F * F + r % F;
                let jj = min(j0 + r, bk.hi - 1u);
                var t = st_[at] * scale;
                if (p.has_bias != 0u) { t += bias_at(bk, i, jj); }
                if (p.has_mask != 0u) { t += mask[p.mask_off + bk.b * p.mask_b + jj]; }
                st_[at] = t;
                if (visible(i, j0 + r, bk.hi)) { mx = max(mx, t); }
            }
            let alpha = exp(m - mx);
            l *= alpha;
            for (var c = 0u; c < DP; c++) { ot_[li * DP + c] *= alpha; }
            for (var r = 0u; r < BK; r++) {
                let at = base + (r / F) * F * F + r % F;
                let w = select(0.0, exp(st_[at] - mx), visible(i, j0 + r, bk.hi));
                l += w;
                pt_[li * BKP + r] = f16(w);
            }
            m = mx;
        }
        workgroupBarrier();
        // O += P·V over the 2 × DP/F output fragments, four at a time.
        for (var f0 = 0u; f0 < 2u * DP / F; f0 += 4u) {
            let fo = f0 + frag;
            let orow = (fo % 2u) * F;
            let ocol = (fo / 2u) * F;
            let dst = select(orow * DP + ocol, BQ * DP, extra);
            let pitch = select(DP, F, extra);
            var acc = coopLoadT<FRAG_C>(&ot_[dst], pitch);
            for (var kk = 0u; kk < BK; kk += F) {
                let op = orow * BKP + kk;
                let ov = kk * DPP + ocol;
                // A: probabilities, keys along a row. B: (key, column) at key·DPP + column,
                // row-major.
                let fa = coopLoadT<FRAG_A>(&pt_[op], BKP);
                let fb = coopLoadT<FRAG_B>(&vt_[ov], DPP);
                acc = coopMultiplyAdd(fa, fb, acc);
            }
            coopStoreT(acc, &ot_[dst], pitch);
        }
        workgroupBarrier();
    }
    if (own && live && bk.q0 + li < p.seq) {
        let ob = p.o_off + bk.b * p.o_b + bk.h * p.o_h + i * p.o_t;
        let inv = select(0.0, 1.0 / l, l > 0.0);
        for (var c = 0u; c < D; c++) { store_out(ob + c, ot_[li * DP + c] * inv); }
    }
}
