//! Pictures of a stack's dependency graph (`graph`, `graph --mermaid`, the graphs in docs/):
//! drawn from the model, kept out of it.

use crate::model::Graph;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashSet;

impl Graph {
    /// DOT source of the dependency graph.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box];\n", self.stack);
        for n in &self.nodes {
            out.push_str(&format!("  \"{}\" [label=\"{}\\n{}\"];\n", n.urn, n.type_name(), n.urn.name()));
        }
        let drawn = self.drawn_deps();
        for (i, n) in self.nodes.iter().enumerate() {
            for &d in &drawn[i] {
                out.push_str(&format!("  \"{}\" -> \"{}\";\n", self.nodes[d].urn, n.urn));
            }
        }
        out.push_str("}\n");
        out
    }

    /// Each node's dependencies to draw: its direct ones, less those another direct dependency
    /// already leads to (a transitive reduction: the picture shows the order, not every edge).
    pub(crate) fn drawn_deps(&self) -> Vec<Vec<usize>> {
        use petgraph::algo::tred::{dag_to_toposorted_adjacency_list, dag_transitive_reduction_closure};
        use petgraph::visit::IntoNeighbors;
        let direct: Vec<Vec<usize>> =
            self.nodes.iter().map(|n| n.deps.iter().filter_map(|d| self.index.get(d).copied()).collect()).collect();
        let mut g: DiGraph<(), ()> = DiGraph::with_capacity(direct.len(), 0);
        let ids: Vec<NodeIndex> = direct.iter().map(|_| g.add_node(())).collect();
        for (i, deps) in direct.iter().enumerate() {
            g.extend_with_edges(deps.iter().map(|&d| (ids[d], ids[i])));
        }
        // Nodes are in dependency order: their indices are a topological order already.
        let (sorted, _) = dag_to_toposorted_adjacency_list::<_, u32>(&g, &ids);
        let (reduced, _) = dag_transitive_reduction_closure(&sorted);
        let mut kept: Vec<HashSet<usize>> = vec![HashSet::new(); direct.len()];
        for d in 0..direct.len() {
            for i in reduced.neighbors(d as u32) {
                kept[i as usize].insert(d);
            }
        }
        // In the order the program gave them.
        direct
            .iter()
            .enumerate()
            .map(|(i, deps)| deps.iter().copied().filter(|d| kept[i].contains(d)).collect())
            .collect()
    }

    /// Mermaid source of the dependency graph.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            out.push_str(&format!("  n{i}[\"{}<br/>{}\"]\n", n.type_name(), n.urn.name()));
        }
        for (i, deps) in self.drawn_deps().iter().enumerate() {
            for d in deps {
                out.push_str(&format!("  n{d} --> n{i}\n"));
            }
        }
        out
    }
}
