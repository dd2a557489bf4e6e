//! Liveness-based buffer plan: each activation lives from the first node that touches it to the
//! last; a buffer freed after its tensor's last use is handed to a later tensor that fits.

use super::{Arg, Node, TensorDesc, TensorKind};

/// What the plan achieved, in bytes.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct PlanReport {
    /// Bytes of the activation buffers actually allocated.
    pub planned_activation_bytes: u64,
    /// Bytes all activations would take with a buffer each.
    pub total_activation_bytes: u64,
    pub activation_buffers: usize,
    pub activation_tensors: usize,
}

/// Assigns every activation tensor a buffer slot. Returns (slot per tensor, slot sizes, report).
/// `pinned` tensors (outputs) are never released.
pub(crate) fn plan(
    tensors: &[TensorDesc],
    nodes: &[Node],
    pinned: &[bool],
) -> (Vec<Option<usize>>, Vec<u64>, PlanReport) {
    let n = tensors.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (i, node) in nodes.iter().enumerate() {
        for a in &node.args {
            if let Arg::T(t, _) = a {
                first[t.0] = first[t.0].min(i);
                last[t.0] = last[t.0].max(i);
            }
        }
    }
    let mut slot = vec![None; n];
    let mut sizes: Vec<u64> = vec![];
    let mut free: Vec<usize> = vec![];
    let mut report = PlanReport::default();
    for (i, node) in nodes.iter().enumerate() {
        for a in &node.args {
            let Arg::T(t, _) = a else { continue };
            let d = &tensors[t.0];
            if d.kind != TensorKind::Activation || slot[t.0].is_some() {
                continue;
            }
            let need = d.bytes();
            report.total_activation_bytes += need;
            report.activation_tensors += 1;
            // Best fit: the smallest free buffer that holds it; else grow the largest free one
            // (its earlier users are done) rather than adding a buffer.
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, s)| sizes[**s] >= need)
                .min_by_key(|(_, s)| sizes[**s])
                .map(|(k, _)| k)
                .or_else(|| {
                    free.iter()
                        .enumerate()
                        .max_by_key(|(_, s)| sizes[**s])
                        .map(|(k, _)| k)
                });
            let s = match fit {
                Some(k) => {
                    let s = free.swap_remove(k);
                    sizes[s] = sizes[s].max(need);
                    s
                }
                None => {
                    sizes.push(need);
                    sizes.len() - 1
                }
            };
            slot[t.0] = Some(s);
        }
        // Release after the node: its inputs and outputs never share a buffer.
        for a in &node.args {
            let Arg::T(t, _) = a else { continue };
            if last[t.0] == i && !pinned[t.0] {
                if let Some(s) = slot[t.0] {
                    if !free.contains(&s) {
                        free.push(s);
                    }
                }
            }
        }
    }
    report.activation_buffers = sizes.len();
    report.planned_activation_bytes = sizes.iter().sum();
    (slot, sizes, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Access, TensorId};
    use crate::ops::DType;

    fn t(shape: usize) -> TensorDesc {
        TensorDesc {
            name: String::new(),
            shape: vec![shape],
            dtype: DType::F32,
            kind: TensorKind::Activation,
        }
    }

    #[test]
    fn chain_reuses_buffers_and_never_aliases_within_a_node() {
        // a -> b -> c -> d: only two buffers are ever live at once.
        let tensors = vec![t(100), t(100), t(50), t(100)];
        let nodes = plan_only(&[(0, 1), (1, 2), (2, 3)]);
        let (slot, sizes, rep) = plan(&tensors, &nodes, &[false, false, false, true]);
        assert_eq!(rep.total_activation_bytes, 1400);
        assert_eq!(sizes.len(), 2);
        for (i, o) in [(0, 1), (1, 2), (2, 3)] {
            assert_ne!(
                slot[i], slot[o],
                "node {i}->{o} aliases its input and output"
            );
        }
        assert!(rep.planned_activation_bytes < rep.total_activation_bytes);
    }

    /// Nodes with only args (the plan never looks at the kernel call).
    fn plan_only(edges: &[(usize, usize)]) -> Vec<Node> {
        let gpu = crate::gpu::test_gpu();
        let call = crate::ops::activation::call(gpu, 1, Default::default()).unwrap();
        edges
            .iter()
            .map(|&(i, o)| Node {
                label: String::new(),
                call: call.clone(),
                args: vec![
                    Arg::T(TensorId(i), Access::Read),
                    Arg::T(TensorId(o), Access::Write),
                ],
            })
            .collect()
    }
}
