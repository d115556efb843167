//! The service dependency graph (petgraph) and the orders the engine walks it in.
//!
//! Invariants: hard dependencies form a DAG (validation refuses hard cycles and prints them);
//! [`Topology::order`] lists every service with callers before callees, except across the
//! soft edges listed in [`Topology::lagged`], which close soft cycles and are evaluated with
//! the previous solution's values. Edge lists are in file order, so every walk is deterministic.

use std::collections::BTreeSet;

use petgraph::graph::{DiGraph, NodeIndex};

use super::{DepKind, Dependency, Role, Service, ServiceId};

/// Services, dependencies and derived orders.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Services, in file order.
    pub services: Vec<Service>,
    /// Dependencies, in file order.
    pub deps: Vec<Dependency>,
    /// The graph: node weight = service id, edge weight = dependency index.
    pub graph: DiGraph<ServiceId, usize>,
    /// Callers before callees.
    pub order: Vec<ServiceId>,
    /// For each dependency: true when it closes a (soft) cycle and is evaluated lagged.
    pub lagged: Vec<bool>,
    /// For each service: indices of its outgoing dependencies (it is the caller).
    pub out_edges: Vec<Vec<usize>>,
    /// For each service: indices of its incoming dependencies (it is the callee).
    pub in_edges: Vec<Vec<usize>>,
    /// Longest chain of hard/soft calls below each service (0 for leaves); the topological layer.
    pub layer: Vec<usize>,
}

impl Topology {
    /// Builds the graph and its orders. Call [`hard_cycle`] first: with a hard cycle the order
    /// would be meaningless.
    pub fn new(services: Vec<Service>, deps: Vec<Dependency>) -> Topology {
        let n = services.len();
        let mut graph = DiGraph::with_capacity(n, deps.len());
        let nodes: Vec<NodeIndex> = (0..n).map(|i| graph.add_node(i)).collect();
        let mut out_edges = vec![Vec::new(); n];
        let mut in_edges = vec![Vec::new(); n];
        for (i, d) in deps.iter().enumerate() {
            graph.add_edge(nodes[d.from], nodes[d.to], i);
            out_edges[d.from].push(i);
            in_edges[d.to].push(i);
        }
        // Roles feed services without a call edge: a queue feeds its consumers, and the callers
        // of a database primary feed its replica while it is down. Ordering those feeders first
        // lets one load pass see their flows (when that closes a cycle, the iteration over the
        // fixed point still reaches it).
        let mut augmented: Vec<(ServiceId, ServiceId)> =
            deps.iter().map(|d| (d.from, d.to)).collect();
        for (i, svc) in services.iter().enumerate() {
            for r in &svc.roles {
                let mut feed = |from: usize, to: usize| {
                    if from != to {
                        augmented.push((from, to));
                    }
                };
                match r {
                    Role::Queue { consumers, .. } => consumers.iter().for_each(|&c| feed(i, c)),
                    Role::Database { replica, .. } => in_edges[i]
                        .iter()
                        .for_each(|&e| feed(deps[e].from, *replica)),
                    _ => {}
                }
            }
        }
        let mut aug_in = vec![Vec::new(); n];
        for (k, &(_, to)) in augmented.iter().enumerate() {
            aug_in[to].push(k);
        }
        let (order, mut lagged) = caller_first_order(n, &augmented, &aug_in);
        lagged.truncate(deps.len());
        let mut layer = vec![0usize; n];
        for &s in order.iter().rev() {
            for &e in &out_edges[s] {
                if !lagged[e] {
                    layer[s] = layer[s].max(layer[deps[e].to] + 1);
                }
            }
        }
        Topology {
            services,
            deps,
            graph,
            order,
            lagged,
            out_edges,
            in_edges,
            layer,
        }
    }

    /// Looks a service up by name.
    pub fn find(&self, name: &str) -> Option<ServiceId> {
        self.services.iter().position(|s| s.name == name)
    }
}

/// Kahn's algorithm over all edges, taking the lowest-numbered ready service first; when only
/// cycles remain, the lowest-numbered remaining service is released and its remaining incoming
/// (necessarily soft) edges are marked lagged. The ready services are kept ordered and the
/// lowest remaining one is found by a cursor that only moves forward, so the whole walk is
/// `O((n + edges) log n)`.
fn caller_first_order(
    n: usize,
    deps: &[(ServiceId, ServiceId)],
    in_edges: &[Vec<usize>],
) -> (Vec<ServiceId>, Vec<bool>) {
    let mut indegree: Vec<usize> = in_edges.iter().map(Vec::len).collect();
    let mut done = vec![false; n];
    let mut lagged = vec![false; deps.len()];
    let mut order = Vec::with_capacity(n);
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, &(from, _)) in deps.iter().enumerate() {
        out[from].push(i);
    }
    let mut ready: BTreeSet<ServiceId> = (0..n).filter(|&s| indegree[s] == 0).collect();
    // Every service below `lowest` is done.
    let mut lowest = 0;
    while order.len() < n {
        let s = match ready.pop_first() {
            Some(s) => s,
            None => {
                while lowest < n && done[lowest] {
                    lowest += 1;
                }
                if lowest == n {
                    break;
                }
                let s = lowest;
                for &e in &in_edges[s] {
                    if !done[deps[e].0] {
                        lagged[e] = true;
                    }
                }
                s
            }
        };
        done[s] = true;
        order.push(s);
        for &e in &out[s] {
            let to = deps[e].1;
            if !done[to] && !lagged[e] && indegree[to] > 0 {
                indegree[to] -= 1;
                if indegree[to] == 0 {
                    ready.insert(to);
                }
            }
        }
        // Lagged edges into `s` no longer count.
        indegree[s] = 0;
    }
    (order, lagged)
}

/// The first cycle made only of hard dependencies, as service ids in call order
/// (`[a, b, c]` means a -> b -> c -> a), or `None`: in the strongly connected component whose
/// sorted members come first, the walk from its smallest member. Iterative throughout (a chain
/// of a million services does not overflow the stack) and linear in the graph.
pub fn hard_cycle<'a>(
    n: usize,
    deps: impl IntoIterator<Item = &'a Dependency>,
) -> Option<Vec<ServiceId>> {
    let mut adj: Vec<Vec<ServiceId>> = vec![Vec::new(); n];
    for d in deps.into_iter().filter(|d| d.kind == DepKind::Hard) {
        if d.from == d.to {
            return Some(vec![d.from]);
        }
        adj[d.from].push(d.to);
    }
    let mut sccs: Vec<Vec<ServiceId>> = strongly_connected(&adj)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    sccs.iter_mut().for_each(|c| c.sort_unstable());
    sccs.sort();
    let scc = sccs.into_iter().next()?;
    // Walk inside the component from its smallest member until we come back: to the start
    // when it is a successor, else to the smallest successor not seen yet (or the smallest).
    let mut in_scc = vec![false; n];
    for &x in &scc {
        in_scc[x] = true;
    }
    let start = scc[0];
    let mut path = vec![start];
    let mut seen = vec![false; n];
    seen[start] = true;
    let mut cur = start;
    let mut succ: Vec<ServiceId> = Vec::new();
    loop {
        succ.clear();
        succ.extend(adj[cur].iter().copied().filter(|&x| in_scc[x]));
        succ.sort_unstable();
        let Some(&nxt) = succ
            .iter()
            .find(|&&x| x == start || !seen[x])
            .or(succ.first())
        else {
            break;
        };
        if nxt == start {
            break;
        }
        if seen[nxt] {
            // (Back to a member already on the path: the cycle is the path from there.)
            if let Some(pos) = path.iter().position(|&p| p == nxt) {
                path.drain(..pos);
            }
            break;
        }
        path.push(nxt);
        seen[nxt] = true;
        cur = nxt;
    }
    Some(path)
}

/// The strongly connected components of the graph `adj` (Tarjan's algorithm with an explicit
/// stack of frames, so that depth costs heap, not stack).
fn strongly_connected(adj: &[Vec<ServiceId>]) -> Vec<Vec<ServiceId>> {
    const UNSET: usize = usize::MAX;
    let n = adj.len();
    let (mut index, mut low, mut on_stack) = (vec![UNSET; n], vec![0; n], vec![false; n]);
    let (mut stack, mut frames, mut out) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = 0;
    for root in 0..n {
        if index[root] != UNSET {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        frames.push((root, 0usize));
        while let Some(&(v, i)) = frames.last() {
            if let Some(&w) = adj[v].get(i) {
                if let Some(f) = frames.last_mut() {
                    f.1 += 1;
                }
                if index[w] == UNSET {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(u, _)) = frames.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}
