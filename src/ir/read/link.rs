//! Resolving the calls between the functions of a file (`Parser::link`): known names, no
//! cycle, one entry, bounded nesting; then every function is built after those it calls, each
//! once. Loops over the list, never recursion.

use super::*;

/// Resolving calls between functions: loops over the list, never recursion.
impl<'a> Parser<'a> {
    /// Checks the calls (known names, no cycle, one entry, bounded nesting), then builds every
    /// function after the functions it calls, each once, and returns the entry.
    pub(super) fn link(
        &self,
        funcs: Vec<Read<'a>>,
        by_name: &HashMap<&'a str, usize>,
    ) -> PResult<(Func, Vec<u32>)> {
        let edges = self.edges(&funcs, by_name)?;
        let order = self.post_order(&funcs, &edges)?;
        let entry = self.entry(&funcs, &edges)?;
        self.check_nesting(&funcs, &edges, &order)?;
        let mut slots: Vec<Option<Read<'a>>> = funcs.into_iter().map(Some).collect();
        let mut built: Vec<Option<Body>> = vec![None; slots.len()];
        for &i in &order {
            let Some(mut read) = slots[i].take() else {
                continue;
            };
            for call in std::mem::take(&mut read.calls) {
                let mut attrs = call.attrs;
                for r in &call.refs {
                    let body = by_name.get(r.name).and_then(|&j| built[j].clone());
                    let Some(body) = body else {
                        return self.err(
                            r.at,
                            format!("internal: @{} was not built before its caller", r.name),
                        );
                    };
                    attrs[r.attr].2 = Attr::Func(body);
                }
                read.func.insts[call.inst].op = self.make_op(call.code, call.op_at, &attrs)?;
            }
            if i == entry {
                return Ok((read.func, read.lines));
            }
            built[i] = Some(Body::new(read.func));
        }
        self.err(self.text.len(), "the file has no entry function")
    }

    /// The calls of each function, by index; a name no function has is the first error.
    fn edges(&self, funcs: &[Read<'a>], by_name: &HashMap<&'a str, usize>) -> PResult<Edges> {
        let mut edges = Vec::with_capacity(funcs.len());
        for f in funcs {
            let mut calls = Vec::new();
            for r in f.calls.iter().flat_map(|c| &c.refs) {
                let Some(&j) = by_name.get(r.name) else {
                    return self.err(r.at, format!("unknown function @{}", r.name));
                };
                calls.push((j, r.at));
            }
            edges.push(calls);
        }
        Ok(edges)
    }

    /// Every function after the functions it calls (depth-first, with an explicit stack), or
    /// the call that closes a cycle.
    fn post_order(&self, funcs: &[Read<'a>], edges: &Edges) -> PResult<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark = vec![Mark::New; funcs.len()];
        let mut order = Vec::with_capacity(funcs.len());
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..funcs.len() {
            if mark[root] != Mark::New {
                continue;
            }
            mark[root] = Mark::Open;
            stack.push((root, 0));
            while let Some((f, next)) = stack.last_mut() {
                let f = *f;
                let Some(&(g, at)) = edges[f].get(*next) else {
                    mark[f] = Mark::Done;
                    order.push(f);
                    stack.pop();
                    continue;
                };
                *next += 1;
                match mark[g] {
                    Mark::New => {
                        mark[g] = Mark::Open;
                        stack.push((g, 0));
                    }
                    Mark::Open => return self.cycle(funcs, &stack, g, at),
                    Mark::Done => {}
                }
            }
        }
        Ok(order)
    }

    /// The error for a call at `at` to `g`, which `stack` (the open functions) already holds.
    fn cycle<T>(
        &self,
        funcs: &[Read<'a>],
        stack: &[(usize, usize)],
        g: usize,
        at: usize,
    ) -> PResult<T> {
        let from = stack.iter().rposition(|&(f, _)| f == g).unwrap_or(0);
        let Some(&(last, _)) = stack.last() else {
            return self.err(at, "a function calls itself");
        };
        if last == g {
            return self.err(
                at,
                format!(
                    "@{} calls itself: a scan's body cannot be its own function",
                    funcs[g].name
                ),
            );
        }
        let mut path: Vec<String> = stack[from..]
            .iter()
            .map(|&(f, _)| format!("@{}", funcs[f].name))
            .collect();
        path.push(format!("@{}", funcs[g].name));
        self.err(
            at,
            format!(
                "functions call each other in a cycle: {}",
                path.join(" -> ")
            ),
        )
    }

    /// The one function no other calls.
    fn entry(&self, funcs: &[Read<'a>], edges: &Edges) -> PResult<usize> {
        let mut called = vec![false; funcs.len()];
        for &(g, _) in edges.iter().flatten() {
            called[g] = true;
        }
        let mut free = (0..funcs.len()).filter(|&i| !called[i]);
        match (free.next(), free.next()) {
            (Some(one), None) => Ok(one),
            (Some(a), Some(b)) => self.err(
                funcs[b].at,
                format!(
                    "ambiguous entry: @{} and @{} are both unreferenced; the entry is the one \
                     function no scan calls",
                    funcs[a].name, funcs[b].name
                ),
            ),
            (None, _) => self.err(
                funcs.first().map_or(0, |f| f.at),
                "every function is called by another: there is no entry",
            ),
        }
    }

    /// No chain of calls holds more than `MAX_NESTING` functions.
    fn check_nesting(&self, funcs: &[Read<'a>], edges: &Edges, order: &[usize]) -> PResult<()> {
        let mut depth = vec![0usize; funcs.len()];
        for &f in order {
            let deepest = edges[f].iter().max_by_key(|&&(g, _)| depth[g]);
            depth[f] = 1 + deepest.map_or(0, |&(g, _)| depth[g]);
            if let Some(&(g, at)) = deepest.filter(|_| depth[f] > MAX_NESTING) {
                return self.err(
                    at,
                    format!(
                        "functions nest more than {MAX_NESTING} deep: @{} calls @{}, which holds \
                         a chain of {} functions",
                        funcs[f].name, funcs[g].name, depth[g]
                    ),
                );
            }
        }
        Ok(())
    }
}
