//! The two graph walks a policy needs, in time linear in its size and with
//! no recursion: class definitions that refer to each other and services
//! that depend on each other can form chains of 100,000, which a recursive
//! walk would overflow the stack on and a walk per node would take minutes
//! over.
//!
//! A graph is given as `succ[i]`: the nodes node i refers to (depends on).

/// The strongly connected components (Tarjan's algorithm, iterative). Each
/// node is in exactly one; a node is in a cycle when its component has more
/// than one node or it refers to itself.
pub(crate) fn components(succ: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const NONE: usize = usize::MAX;
    let n = succ.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        // (node, how many of its successors were looked at)
        let mut walk = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut k)) = walk.last_mut() {
            if let Some(&w) = succ[v].get(*k) {
                *k += 1;
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    walk.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            walk.pop();
            if let Some(&(parent, _)) = walk.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(component);
            }
        }
    }
    out
}

/// Whether a component is a cycle (more than one node, or one that refers
/// to itself).
pub(crate) fn is_cycle(component: &[usize], succ: &[Vec<usize>]) -> bool {
    component.len() > 1 || succ[component[0]].contains(&component[0])
}

/// A cycle through `start` inside its component `members` (a breadth-first
/// walk from `start` back to it), as the nodes from `start` on.
pub(crate) fn cycle_through(start: usize, members: &[usize], succ: &[Vec<usize>]) -> Vec<usize> {
    let inside: std::collections::HashSet<usize> = members.iter().copied().collect();
    let mut came_from: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &succ[v] {
            if w == start {
                // Back at the start: the path to v, then v.
                let mut path = vec![v];
                while let Some(&p) = came_from.get(path.last().expect("not empty")) {
                    path.push(p);
                }
                path.reverse();
                if path[0] != start {
                    path.insert(0, start);
                }
                return path;
            }
            if inside.contains(&w) && w != start && !came_from.contains_key(&w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start]
}

/// The nodes in an order where every node comes after those it refers to
/// (the graph has no cycle; nodes on one come in some order at the end).
pub(crate) fn dependencies_first(succ: &[Vec<usize>]) -> Vec<usize> {
    // Components come out of Tarjan's algorithm in reverse topological
    // order of the condensed graph: referred-to ones first.
    components(succ).into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
        v.iter_mut().for_each(|c| c.sort_unstable());
        v.sort();
        v
    }

    #[test]
    fn components_table() {
        for (succ, want) in [
            (vec![], vec![]),
            (vec![vec![]], vec![vec![0]]),
            (vec![vec![0]], vec![vec![0]]),
            (vec![vec![1], vec![0]], vec![vec![0, 1]]),
            (
                vec![vec![1], vec![2], vec![]],
                vec![vec![0], vec![1], vec![2]],
            ),
            (
                vec![vec![1], vec![2], vec![0, 3], vec![4], vec![3]],
                vec![vec![0, 1, 2], vec![3, 4]],
            ),
        ] {
            assert_eq!(sorted(components(&succ)), want, "{succ:?}");
        }
    }

    #[test]
    fn cycles_and_order_table() {
        let succ = vec![vec![1], vec![2], vec![0, 3], vec![4], vec![3], vec![]];
        let comps = components(&succ);
        let cyclic: Vec<bool> = comps.iter().map(|c| is_cycle(c, &succ)).collect();
        assert_eq!(cyclic.iter().filter(|&&c| c).count(), 2);
        let c = comps.iter().find(|c| c.contains(&0)).unwrap();
        assert_eq!(cycle_through(0, c, &succ), vec![0, 1, 2]);
        assert_eq!(cycle_through(2, c, &succ), vec![2, 0, 1]);
        // A chain: dependencies first.
        let chain: Vec<Vec<usize>> = (0..5)
            .map(|i| if i < 4 { vec![i + 1] } else { vec![] })
            .collect();
        assert_eq!(dependencies_first(&chain), vec![4, 3, 2, 1, 0]);
    }

    #[test]
    fn a_chain_of_a_million_is_walked_without_recursion() {
        let n = 1_000_000;
        let mut succ: Vec<Vec<usize>> = (0..n).map(|i| vec![i + 1]).collect();
        succ[n - 1] = vec![0];
        let comps = components(&succ);
        assert_eq!(comps.len(), 1);
        assert_eq!(cycle_through(0, &comps[0], &succ).len(), n);
    }
}
