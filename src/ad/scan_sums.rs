//! Sums of outer products that a scan accumulates in a carry, computed after the loop as one
//! product. A reverse scan adds the cotangent of a matrix every step reads into a carried
//! accumulator, one outer product `u w^T` per step (`rnn`'s `dW += delta h^T`): the whole
//! matrix is read and written at every step. Instead the body returns `u` and `w` as per-step
//! outputs, and after the loop `init + U^T W` (`U`, `W` the stacked steps) adds them all in one
//! product. The sum runs over ascending steps in fused multiply-adds, not in the loop's order,
//! so the bits differ from the loop's in the last places; the interpreter and the JIT run the
//! same rewritten function.

use crate::ir::{Binary, Body, Builder, Def, Func, Op, ScanShape, Value};
use crate::simplify::{dce, simplifying_builder};

/// A carry of a scan body that only accumulates outer products: the carry's result is
/// `carry + matmul(a, b)` with a contraction of length 1, and nothing else reads the carry or
/// its new value.
struct Accumulator {
    /// Index among the carries.
    carry: usize,
    /// The product's factors (the column `a`, `m x 1` or its transpose, and the row `b`) and
    /// the result's shape `m x n`.
    factors: [Value; 2],
    m: usize,
    n: usize,
}

/// How many times each value of `f` is read, by instructions and as a result.
fn reads(f: &Func) -> Vec<usize> {
    let mut count = vec![0; f.num_values()];
    for inst in &f.insts {
        for a in inst.args.iter() {
            count[a.index()] += 1;
        }
    }
    for r in &f.results {
        count[r.index()] += 1;
    }
    count
}

/// The carries of `body` (laid out as `s`) that accumulate outer products.
fn accumulators(body: &Func, s: &ScanShape) -> Vec<Accumulator> {
    let count = reads(body);
    let inst = |v: Value| match body.def(v) {
        Def::Inst(k) => Some(&body.insts[k]),
        Def::Param(_) => None,
    };
    let mut found = Vec::new();
    for carry in 0..s.carries {
        let param = body.param_value(s.carry_start() + carry);
        let new = body.results[carry];
        let Some(add) = inst(new).filter(|i| i.op == Op::Binary(Binary::Add)) else {
            continue;
        };
        let term = match *add.args {
            [x, y] if x == param && y != param => y,
            [x, y] if y == param && x != param => x,
            _ => continue,
        };
        let Some(product) = inst(term) else {
            continue;
        };
        let Op::Matmul { ta, .. } = product.op else {
            continue;
        };
        let factors = [product.args[0], product.args[1]];
        let (ta_ty, ty) = (body.value_type(factors[0]), body.value_type(term));
        let inner = ta_ty.shape.get(if ta { 0 } else { 1 });
        let single_use = count[param.index()] == 1 && count[new.index()] == 1;
        if ty.rank() == 2 && ta_ty.rank() == 2 && inner == 1 && single_use {
            found.push(Accumulator {
                carry,
                factors,
                m: ty.shape.get(0),
                n: ty.shape.get(1),
            });
        }
    }
    found
}

/// Where the stacked steps of a factor come from: a per-step input of the scan (the operand
/// itself, as the body reads it unchanged), or an output the rewritten body adds (its index
/// among the added outputs; a factor two accumulators share is output once).
#[derive(Clone, Copy, PartialEq)]
enum Stacked {
    Input(usize),
    Output(usize),
}

/// Each accumulator's two factors as stacked sources, and the body values to output.
fn sources(s: &ScanShape, found: &[Accumulator]) -> (Vec<[Stacked; 2]>, Vec<(Value, usize)>) {
    let mut outputs: Vec<(Value, usize)> = Vec::new();
    let mut stacked = Vec::with_capacity(found.len());
    for a in found {
        let pair = [0, 1].map(|i| {
            let (v, len) = (a.factors[i], [a.m, a.n][i]);
            let param = v.index();
            if (s.xs_start()..s.xs_start() + s.xs).contains(&param) {
                return Stacked::Input(param);
            }
            let at = outputs.iter().position(|o| o.0 == v).unwrap_or_else(|| {
                outputs.push((v, len));
                outputs.len() - 1
            });
            Stacked::Output(at)
        });
        stacked.push(pair);
    }
    (stacked, outputs)
}

/// `body` without the carries of `found`, returning `outputs` (as vectors of their lengths)
/// after its own outputs.
fn body_without(
    body: &Func,
    s: &ScanShape,
    found: &[Accumulator],
    outputs: &[(Value, usize)],
) -> Func {
    let dropped: Vec<usize> = found.iter().map(|a| s.carry_start() + a.carry).collect();
    let b = simplifying_builder(body.name.clone(), body.insts.len() + outputs.len());
    let mut map: Vec<Option<Value>> = Vec::with_capacity(body.num_values());
    for (i, p) in body.params.iter().enumerate() {
        let kept = !dropped.contains(&i);
        map.push(kept.then(|| b.param_with(&p.name, p.ty, p.role, p.init).value()));
    }
    for inst in &body.insts {
        // Only the accumulating adds read a dropped carry, and nothing reads them.
        let args: Option<Vec<Value>> = inst.args.iter().map(|a| map[a.index()]).collect();
        map.push(args.map(|args| {
            let v = b.op(inst.op.clone(), &args).value();
            if let Some(n) = &inst.name {
                b.name_if_unnamed(v, n);
            }
            v
        }));
    }
    let at = |v: Value| map[v.index()].expect("a kept value");
    let mut results: Vec<Value> = (0..s.carries)
        .filter(|c| !found.iter().any(|a| a.carry == *c))
        .map(|c| at(body.results[c]))
        .collect();
    results.extend(body.results[s.carries..].iter().map(|&r| at(r)));
    for &(v, len) in outputs {
        results.push(b.var(at(v)).reshape(&[len]).value());
    }
    dce(b.finish_unverified(&results))
}

/// Emits the scan `inst` (operands `args` in `b`) with the accumulators of `found` moved after
/// the loop, and returns a value equal to its packed result (the concat of its parts, which
/// the builder's rules cut back into those parts where the result is sliced).
fn emit_hoisted(
    b: &Builder,
    op: &Op,
    args: &[Value],
    s: &ScanShape,
    found: &[Accumulator],
) -> Option<Value> {
    let (stacked, outputs) = sources(s, found);
    let mut scan = op.clone();
    let Op::Scan { body, carries, .. } = &mut scan else {
        return None;
    };
    *body = Body::new(body_without(body.func(), s, found, &outputs));
    *carries -= found.len() as u32;
    let dropped: Vec<usize> = found.iter().map(|a| s.carry_start() + a.carry).collect();
    let operands: Vec<Value> = (0..args.len())
        .filter(|i| !dropped.contains(i))
        .map(|i| args[i])
        .collect();
    let shape = ScanShape::of(&scan, operands.len()).ok()?;
    let (parts, _) = shape.parts().ok()?;
    let packed = b.try_op(scan, &operands).ok()?;
    let part = |i: usize| {
        let (off, t) = parts[i];
        packed.slice(&[off], &[off + t.numel()])
    };
    let kept = shape.carries;
    let mut pieces = Vec::with_capacity(s.carries + s.ys);
    for c in 0..s.carries {
        let Some(j) = found.iter().position(|a| a.carry == c) else {
            // A kept carry, after the kept ones before it.
            let moved = found.iter().filter(|a| a.carry < c).count();
            pieces.push(part(c - moved));
            continue;
        };
        let a = &found[j];
        let [u, w] = [0, 1].map(|i| {
            let len = [a.m, a.n][i];
            let steps = match stacked[j][i] {
                Stacked::Input(operand) => b.var(args[operand]),
                Stacked::Output(k) => part(kept + s.ys + k),
            };
            steps.reshape(&[s.length, len])
        });
        let init = b.var(args[s.carry_start() + c]);
        let total = init + u.matmul_t(w, true, false);
        pieces.push(total.reshape(&[a.m * a.n]));
    }
    pieces.extend((0..s.ys).map(|y| part(kept + y)));
    Some(b.concat(&pieces, 0).value())
}

/// The layout and the accumulators of `op` if it is a scan with steps and accumulators.
fn hoistable(op: &Op, operands: usize) -> Option<(ScanShape, Vec<Accumulator>)> {
    let Op::Scan { body, .. } = op else {
        return None;
    };
    let s = ScanShape::of(op, operands).ok()?;
    let found = accumulators(body.func(), &s);
    (s.length > 0 && !found.is_empty()).then_some((s, found))
}

/// `f` with the outer-product accumulators of its scans (not those of scans nested in bodies)
/// computed after their loops. `f` must be valid.
pub(crate) fn hoist_scan_sums(f: Func) -> Func {
    let wanted = f
        .insts
        .iter()
        .any(|inst| hoistable(&inst.op, inst.args.len()).is_some());
    if !wanted {
        return f;
    }
    let b = simplifying_builder(f.name.clone(), f.insts.len());
    let mut map: Vec<Value> = Vec::with_capacity(f.num_values());
    for p in &f.params {
        map.push(b.param_with(&p.name, p.ty, p.role, p.init).value());
    }
    for inst in &f.insts {
        let args: Vec<Value> = inst.args.iter().map(|a| map[a.index()]).collect();
        let hoisted = hoistable(&inst.op, args.len())
            .and_then(|(s, found)| emit_hoisted(&b, &inst.op, &args, &s, &found));
        let v = hoisted.unwrap_or_else(|| b.op(inst.op.clone(), &args).value());
        if let Some(n) = &inst.name {
            b.name_if_unnamed(v, n);
        }
        map.push(v);
    }
    let results: Vec<Value> = f.results.iter().map(|r| map[r.index()]).collect();
    dce(b.finish_unverified(&results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::eval;
    use crate::ir::parse;

    /// A scan carrying `h` and accumulating `acc += h x^T` (`x` a per-step input) and
    /// `acc2 += h h^T` (a factor shared with the first), plus `extra`'s lines in the body and
    /// `attrs` on the scan; one step's output has `y_len` elements.
    fn accumulating(extra: &str, results: &str, attrs: &str, y_len: usize) -> Func {
        let text = format!(
            "func @step(c: f64[3,2], acc: f64[3,2], acc2: f64[3,3], h: f64[3], x: f64[2]) -> ({results}) {{
    xc: f64[2,1] = reshape x [shape=[2,1]]
    cx: f64[3,1] = matmul c, xc
    cx3: f64[3] = reshape cx [shape=[3]]
    s: f64[3] = add cx3, h
    hn: f64[3] = tanh s
    hc: f64[3,1] = reshape h [shape=[3,1]]
    xr: f64[1,2] = reshape x [shape=[1,2]]
    o: f64[3,2] = matmul hc, xr
    accn: f64[3,2] = add acc, o
    oo: f64[3,3] = matmul hc, hc [tb=true]
    acc2n: f64[3,3] = add oo, acc2
{extra}
}}

func @outer(c: f64[3,2], a0: f64[3,2], b0: f64[3,3], h0: f64[3], xs: f64[5,2]) -> (f64[{total}]) {{
    r: f64[{total}] = scan c, a0, b0, h0, xs [body=@step, carries=3, consts=1, length=5{attrs}]
    return r
}}
",
            total = 6 + 9 + 3 + 5 * y_len
        );
        let f = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        crate::ir::verify(&f).unwrap_or_else(|e| panic!("{e}\n{text}"));
        f
    }

    fn carries(f: &Func) -> Vec<u32> {
        f.insts
            .iter()
            .filter_map(|i| {
                let Op::Scan { carries, .. } = i.op else {
                    return None;
                };
                Some(carries)
            })
            .collect()
    }

    /// Values in [-1, 1) from a seeded generator.
    fn inputs(f: &Func) -> Vec<Vec<f64>> {
        let mut seed = 17u64;
        f.params
            .iter()
            .map(|p| {
                (0..p.ty.numel())
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (seed >> 11) as f64 / (1u64 << 52) as f64 - 1.0
                    })
                    .collect()
            })
            .collect()
    }

    /// `f` and `g` give the same packed result to rounding (1e-15 of its largest element).
    fn assert_close(f: &Func, g: &Func) {
        let ins = inputs(f);
        let (want, got) = (eval(f, &ins).unwrap(), eval(g, &ins).unwrap());
        let scale = want[0].iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert_eq!(want[0].len(), got[0].len());
        for (i, (w, x)) in want[0].iter().zip(&got[0]).enumerate() {
            assert!(
                (w - x).abs() <= 1e-15 * scale,
                "element {i}: {w} vs {x}\n{g}"
            );
        }
    }

    #[test]
    fn outer_products_accumulated_in_carries_are_summed_after_the_loop() {
        for attrs in ["", ", reverse=true"] {
            let f = accumulating(
                "    return accn, acc2n, hn, hn",
                "f64[3,2], f64[3,3], f64[3], f64[3]",
                attrs,
                3,
            );
            let g = hoist_scan_sums(f.clone());
            crate::ir::verify(&g).unwrap();
            assert_eq!(carries(&g), [1], "{attrs}\n{g}");
            // The body returns h and two outputs, plus `hc` once for both products (`x` is
            // read from the scan's operand).
            let scan = g.insts.iter().find(|i| matches!(i.op, Op::Scan { .. }));
            let Some(Op::Scan { body, .. }) = scan.map(|i| &i.op) else {
                panic!("no scan in\n{g}");
            };
            assert_eq!(body.func().results.len(), 4, "{attrs}\n{g}");
            assert_close(&f, &g);
        }
    }

    #[test]
    fn carries_read_otherwise_or_products_of_longer_contractions_stay() {
        // The accumulator read by another value, its new value also an output, a zero-length
        // scan: nothing to hoist.
        let cases = [
            (
                "    t: f64[3,2] = mul acc, acc\n    return accn, acc2n, hn, t",
                "f64[3,2], f64[3,3], f64[3], f64[3,2]",
            ),
            (
                "    return accn, acc2n, hn, accn",
                "f64[3,2], f64[3,3], f64[3], f64[3,2]",
            ),
        ];
        for (extra, results) in cases {
            let f = accumulating(extra, results, "", 6);
            let g = hoist_scan_sums(f.clone());
            // acc2 still moves; acc stays.
            assert_eq!(carries(&g), [2], "{extra}");
            assert_close(&f, &g);
        }
        let text = "func @step(c: f64[3,2], acc: f64[3,3]) -> (f64[3,3]) {
    o: f64[3,3] = matmul c, c [tb=true]
    accn: f64[3,3] = add acc, o
    return accn
}

func @outer(c: f64[3,2], a0: f64[3,3]) -> (f64[9]) {
    r: f64[9] = scan c, a0 [body=@step, carries=1, consts=1, length=4]
    return r
}
";
        let f = parse(text).unwrap();
        assert_eq!(hoist_scan_sums(f.clone()), f, "a contraction of 2");
        let f = parse(&text.replace("length=4", "length=0")).unwrap();
        assert_eq!(hoist_scan_sums(f.clone()), f, "no steps");
    }
}
