//! How the planner lays values out, against the interpreter bit for bit: concats read
//! piecewise along any axis, pads that write each element once, transposed copies, values read
//! twice by one op fused, loop roots kept in registers, and concat parts computed in place.

mod common;

use adjit::call::Executor;
use adjit::interp;
use adjit::ir::{self, Builder, Var};
use adjit::jit::{Jit, JitOptions, Tier};
use common::agree::{check_agrees, compiled_over_nan, difference};

/// Concats read piecewise by the loops that read them (never stored): parts that are slices,
/// splat constants, broadcast scalars, one-element scalars and computed values; several such
/// concats with different cuts in one loop; a merged loop ending in a whole-shape sum; 2-D
/// concats along the leading axis, along an axis after a unit one and along a later axis (read
/// by a loop that must then not take a sum, and beside a concat along another axis, which is
/// then stored); and concats that must be stored instead (a result, a matmul operand, a short
/// one). Compiled code equals the interpreter bit for bit, at every chunk size.
#[test]
fn concats_read_piecewise_agree_with_the_interpreter() {
    let long = adjit::jit::plan::MIN_PIECEWISE_ELEMENTS;
    for n in [2usize, 3, 4, 5, 9, long - 1, long, long + 1, long + 3] {
        let b = Builder::new("pieces");
        let h = b.param("h", &[n]);
        let s = b.param("s", &[]);
        let m = b.param("m", &[1, n]);
        let w = b.param("w", &[2, n]);
        let first = h.slice(&[0], &[1]);
        let rest = h.slice(&[0], &[n - 1]);
        let down = b.concat(&[first, rest], 0);
        let up = b.concat(&[h.slice(&[1], &[n]), h.slice(&[n - 1], &[n])], 0);
        let mixed = b.concat(
            &[
                s.reshape(&[1]),
                b.splat(2.5, &[1]),
                (h.slice(&[0], &[n - 2]) * h.slice(&[2], &[n])).sin(),
            ],
            0,
        );
        let bcast = b.concat(&[s.broadcast_to(&[n - 1]), h.slice(&[0], &[1])], 0);
        let laplace = (down - h) + (up - h) + mixed * bcast;
        let total = (laplace * laplace).sum();
        let wide = b.concat(&[m.slice(&[0, 1], &[1, n]), m.slice(&[0, 0], &[1, 1])], 1);
        let rows = b.concat(&[m, m * m], 0);
        let later = b.concat(
            &[rows.slice(&[0, 1], &[2, n]), rows.slice(&[0, 0], &[2, 1])],
            1,
        );
        let returned = b.concat(&[rest, first], 0);
        let later2 = b.concat(
            &[
                rows.slice(&[0, n - 1], &[2, n]),
                rows.slice(&[0, 0], &[2, n - 1]),
            ],
            1,
        );
        let later3 = b.concat(&[w.slice(&[0, 1], &[2, n]), w.slice(&[0, 0], &[2, 1])], 1);
        let stacked = b.concat(&[m + m, m], 0);
        let f = b
            .finish(&[
                laplace,
                total,
                (wide * m).exp(),
                rows * b.splat(3.0, &[2, n]),
                later - rows,
                returned,
                rows.matmul(m.t()),
                later2 - rows,
                (rows * rows * rows).sum(),
                later3 * stacked,
            ])
            .unwrap();
        let inputs = [
            (0..n).map(|i| 0.3 + 0.7 * i as f64).collect(),
            vec![-1.25],
            (0..n).map(|i| 1.5 - 0.4 * i as f64).collect(),
            (0..2 * n).map(|i| 0.5 + 0.1 * i as f64).collect(),
        ];
        check_agrees(&format!("pieces n={n}"), &f, &inputs);
        // The planner reads these piecewise, and stores those.
        let kinds = adjit::jit::plan::plan(&f, 1000).kinds;
        let piecewise = |v: ir::Value| kinds[v] == adjit::jit::plan::Kind::Pieces;
        for (name, v) in [("down", down), ("up", up), ("mixed", mixed), ("wide", wide)] {
            assert_eq!(
                piecewise(v.value()),
                n >= long,
                "n={n}: {name} read piecewise or stored wrongly"
            );
        }
        for (name, v) in [("later", later), ("later2", later2)] {
            assert_eq!(piecewise(v.value()), 2 * n >= long, "n={n}: {name}");
        }
        let (a, b) = (piecewise(later3.value()), piecewise(stacked.value()));
        assert!(!(a && b), "n={n}: one loop reads pieces along two axes");
        assert_eq!(a || b, 2 * n >= long, "n={n}: later3 or stacked");
        for (name, v) in [("rows", rows), ("returned", returned)] {
            assert!(!piecewise(v.value()), "n={n}: {name} is read piecewise");
        }
        for chunk_cost in [1, 3, 10] {
            let c = Jit::new(JitOptions {
                tier: Tier::FastCode,
                verify: true,
                chunk_cost: Some(chunk_cost),
            })
            .compile(&f)
            .unwrap();
            let d = difference(
                &interp::eval(&f, &inputs).unwrap(),
                &c.eval(&inputs).unwrap(),
            );
            assert_eq!(
                d, 0.0,
                "pieces n={n}, chunk cost {chunk_cost}: differs by {d:e}"
            );
        }
    }
}

/// Pads write their padding (only) and their operand, each element once: every rank to 3,
/// padding of 0 to 2 before and after each axis, an operand with an empty axis, and a bool
/// pad. The outputs start as NaN, so an element left unwritten shows; the values equal the
/// interpreter's bit for bit, computed in place in the output and in the workspace.
#[test]
fn pads_write_every_element_of_their_result() {
    let shapes: [&[usize]; 4] = [&[5], &[3, 4], &[2, 3, 4], &[0, 3]];
    for shape in shapes {
        let rank = shape.len();
        for code in 0..9usize.pow(rank as u32) {
            let (mut lo, mut hi) = (vec![0; rank], vec![0; rank]);
            for d in 0..rank {
                let k = code / 9usize.pow(d as u32) % 9;
                (lo[d], hi[d]) = (k % 3, k / 3);
            }
            let b = Builder::new("pad");
            let x = b.param("x", shape);
            let padded = x.pad(&lo, &hi);
            let flags = x.gt(b.splat(0.5, shape)).pad(&lo, &hi);
            let twice = padded + padded;
            let f = b.finish(&[padded, b.select(flags, twice, padded)]).unwrap();
            let n: usize = shape.iter().product();
            let inputs = [(0..n).map(|i| 0.25 * i as f64).collect()];
            let (want, outs) = compiled_over_nan(&f, &inputs);
            assert_eq!(
                difference(&want, &outs),
                0.0,
                "{shape:?} lo={lo:?} hi={hi:?}"
            );
        }
    }
}

/// A value read twice by one instruction (a square, `d * d`, or `d + d`) is computed in that
/// instruction's loop, not stored; one read by two instructions is stored. Bits equal the
/// interpreter's.
#[test]
fn values_read_twice_by_one_instruction_are_fused() {
    let b = Builder::new("squares");
    let x = b.param("x", &[50]);
    let y = b.param("y", &[50]);
    let d = x - y;
    let e = x / y;
    let shared = x + x * y;
    let f = b
        .finish(&[(d * d).sum(), (e + e) * x, shared * x + shared.exp()])
        .unwrap();
    let kinds = adjit::jit::plan::plan(&f, 1000).kinds;
    let fused = |v: Var| kinds[v.value()] == adjit::jit::plan::Kind::Fused;
    assert!(fused(d) && fused(e), "d and e are fused");
    assert!(!fused(shared), "shared is read by two instructions");
    let inputs = [
        (0..50).map(|i| 0.1 * i as f64).collect(),
        (0..50).map(|i| 1.0 - 0.03 * i as f64).collect(),
    ];
    check_agrees("squares", &f, &inputs);
}

/// Transposed matrices copied into row-major storage (a result, and a reshape of one, which
/// is stored) go two rows by two columns at a time, with an odd last row and column element by
/// element: every shape from 2x2 to 5x6, and a transpose of a slice (its column stride is not
/// its row count), f64 and bool. The outputs start as NaN; the bits equal the interpreter's.
#[test]
fn transposed_copies_agree_with_the_interpreter() {
    for rows in 2..=5 {
        for cols in 2..=6 {
            let b = Builder::new("transposed");
            let x = b.param("x", &[cols, rows]);
            let wide = b.param("wide", &[cols + 1, rows + 3]);
            let t = x.t();
            let sliced = wide.slice(&[1, 2], &[cols + 1, rows + 2]).t();
            let flags = x.gt(b.splat(1.0, &[cols, rows])).t();
            let f = b
                .finish(&[
                    t,
                    sliced.reshape(&[rows * cols]),
                    b.select(flags, t, sliced),
                    flags,
                ])
                .unwrap();
            let inputs = [
                (0..rows * cols).map(|i| 0.1 * i as f64).collect(),
                (0..(cols + 1) * (rows + 3))
                    .map(|i| 1.0 - 0.05 * i as f64)
                    .collect(),
            ];
            let (want, outs) = compiled_over_nan(&f, &inputs);
            assert_eq!(difference(&want, &outs), 0.0, "{rows}x{cols}");
        }
    }
}

/// A loop root that only later roots of its own merged loop read stays in its register (its
/// kind becomes fused, and it gets no storage); one also read through a slice is stored. Bits
/// equal the interpreter's.
#[test]
fn roots_read_only_inside_their_loop_are_not_stored() {
    let b = Builder::new("locals");
    let x = b.param("x", &[40]);
    let y = b.param("y", &[40]);
    let a = x * y;
    let (ax, ay) = (a + x, a * y);
    let d = x - y;
    let dx = d * x;
    let shifted = d.slice(&[1], &[40]).sum();
    let f = b.finish(&[ax, ay, dx, shifted]).unwrap();
    let kinds = adjit::jit::plan::plan(&f, 1000).kinds;
    let fused = |v: Var| kinds[v.value()] == adjit::jit::plan::Kind::Fused;
    assert!(fused(a), "a is read only by roots of its loop");
    assert!(!fused(d), "d is also read through a slice");
    let inputs = [
        (0..40).map(|i| 0.1 * i as f64).collect(),
        (0..40).map(|i| 2.0 - 0.07 * i as f64).collect(),
    ];
    check_agrees("locals", &f, &inputs);
}

/// Parts of a concat along a later axis that an elementwise loop computes are computed inside
/// the concat, row by row with its strides: a result (in the caller's output) and a value read
/// on (in the workspace), beside parts that are views (copied), a part shared with another
/// reader (stored) and a four-lane function's (stored where it has its own unit). The outputs start as NaN; the bits equal the interpreter's.
#[test]
fn concat_parts_along_a_later_axis_are_computed_in_place() {
    for (rows, wide) in [(2usize, 3usize), (5, 8), (7, 33)] {
        let b = Builder::new("blocks");
        let x = b.param("x", &[rows, wide]);
        let y = b.param("y", &[rows, wide]);
        let left = x * y + x;
        let right = (x - y).exp();
        let shared = x * x * y;
        let joined = b.concat(&[x.slice(&[0, 0], &[rows, 1]), left, right, shared], 1);
        let inner = (x + y) * y;
        let again = b.concat(&[inner, shared], 1);
        let f = b.finish(&[joined, again.sum()]).unwrap();
        let plan = adjit::jit::plan::plan(&f, 1000);
        for (name, v) in [("left", left), ("inner", inner)] {
            assert!(
                plan.in_place[v.value()],
                "{rows}x{wide}: {name} is computed in place"
            );
        }
        // A four-lane function's unit stores row by row in order only.
        let four_lane = adjit::ops::vmath::is_four_lane(ir::Unary::Exp);
        assert_eq!(
            plan.in_place[right.value()],
            !four_lane,
            "{rows}x{wide}: right"
        );
        assert!(
            !plan.in_place[shared.value()],
            "{rows}x{wide}: shared has two readers"
        );
        let n = rows * wide;
        let inputs = [
            (0..n).map(|i| 0.1 * i as f64 - 0.5).collect(),
            (0..n).map(|i| 1.0 - 0.03 * i as f64).collect(),
        ];
        let (want, outs) = compiled_over_nan(&f, &inputs);
        assert_eq!(difference(&want, &outs), 0.0, "{rows}x{wide}");
        check_agrees(&format!("blocks {rows}x{wide}"), &f, &inputs);
    }
}

/// `n`-element parameters `x0` to `x39`.
fn forty_params(b: &Builder, n: usize) -> Vec<Var<'_>> {
    (0..40).map(|i| b.param(&format!("x{i}"), &[n])).collect()
}

/// The sum over all elements of `x[offset] * x[offset + 1] + sum_k c_k x[k stride + offset]`
/// for `k < terms`, each term scaled by its own constant so that no two share an instruction:
/// a chain of about `2 terms` fused values.
fn long_sum<'b>(xs: &[Var<'b>], terms: usize, stride: usize, offset: usize) -> Var<'b> {
    let mut acc = xs[offset] * xs[(offset + 1) % 40];
    for k in 1..terms {
        let scale = (1000 * offset + k) as f64;
        acc = acc + xs[(k * stride + offset) % 40] * scale;
    }
    acc.sum()
}

/// Values of 40 parameters of `n` elements each, for the sums above.
fn forty_inputs(n: usize) -> Vec<Vec<f64>> {
    (0..40)
        .map(|i| (0..n).map(|j| 0.01 * (i * n + j) as f64 - 3.0).collect())
        .collect()
}

/// The position of the unit of `plan` that computes `v`, if one does.
fn unit_computing(plan: &adjit::jit::plan::Plan, v: ir::Value) -> Option<usize> {
    plan.units
        .iter()
        .position(|u| adjit::jit::plan::unit_values(u, &plan.loop_roots).contains(&v))
}

/// The values `root`'s loop computes for it in `plan`: the root and its fused group.
fn group_size(plan: &adjit::jit::plan::Plan, root: ir::Value) -> usize {
    1 + plan.groups.members(root).len()
}

/// A merged loop takes at most `MAX_LOOP_VALUES` values, fused ones included: twelve sums of
/// about 60 values each over the same inputs (720 in all) take more than one loop, while two
/// short sums beside them still share one. Bits equal the interpreter's.
#[test]
fn merged_loops_stay_within_their_value_budget() {
    let n = 20;
    let b = Builder::new("big_sums");
    let xs = forty_params(&b, n);
    let sums: Vec<Var> = (0..12).map(|i| long_sum(&xs, 30, 7 + i, i)).collect();
    let small = [(xs[0] * xs[1]).sum(), (xs[2] - xs[3]).sum()];
    let results: Vec<Var> = sums.iter().chain(&small).copied().collect();
    let f = b.finish(&results).unwrap();
    let plan = adjit::jit::plan::plan(&f, 100_000);
    let loop_of = |v: Var| unit_computing(&plan, v.value());
    for u in &plan.units {
        let roots = adjit::jit::plan::unit_values(u, &plan.loop_roots);
        let values: usize = roots.iter().map(|&r| group_size(&plan, r)).sum();
        assert!(
            roots.len() == 1 || values <= adjit::jit::plan::MAX_LOOP_VALUES,
            "a loop of {} roots computes {values} values",
            roots.len()
        );
    }
    let loops: Vec<_> = sums.iter().map(|&s| loop_of(s)).collect();
    assert!(loops.iter().all(Option::is_some), "{loops:?}");
    assert!(
        loops.iter().any(|l| *l != loops[0]),
        "twelve long sums in one loop: {loops:?}"
    );
    assert_eq!(
        loop_of(small[0]),
        loop_of(small[1]),
        "the short sums share one loop"
    );
    check_agrees("big_sums", &f, &forty_inputs(n));
}

/// A fused value brings at most `MAX_FUSED_GROUP` values into its root's loop: a sum of 150
/// terms (a chain of about 300 fused values) is stored in pieces, each root's group within the
/// budget of its operands, and the bits equal the interpreter's. (Alone in a function, as
/// here, the pieces are consecutive loops; in a gradient, other work stands between them.)
#[test]
fn long_fused_chains_are_computed_in_pieces() {
    let n = 20;
    let b = Builder::new("long_chain");
    let xs = forty_params(&b, n);
    let f = b.finish(&[long_sum(&xs, 150, 7, 0)]).unwrap();
    let plan = adjit::jit::plan::plan(&f, 100_000);
    let limit = adjit::jit::plan::MAX_FUSED_GROUP;
    let roots: Vec<ir::Value> = plan
        .units
        .iter()
        .flat_map(|u| {
            adjit::jit::plan::unit_values(u, &plan.loop_roots)
                .iter()
                .copied()
        })
        .collect();
    for &r in &roots {
        // Each of a binary root's two operands brings at most `limit` values.
        assert!(group_size(&plan, r) <= 2 * limit + 1, "{r:?}");
    }
    // The chain (about 300 values) is longer than any one group may be (129).
    let stored = roots.iter().filter(|&&r| group_size(&plan, r) > 1).count();
    assert!(stored >= 2, "{stored} pieces");
    check_agrees("long_chain", &f, &forty_inputs(n));
}

/// Partial reductions run two result elements at a time (one per lane, the operand's lanes
/// gathered where they are not adjacent), each summed or maximized in the interpreter's
/// order: every axis set of rank 2 and 3 shapes with odd and even kept extents, operands read
/// through a transpose, a broadcast and a fused product, over values with NaN, infinities and
/// signed zeros (whose max is decided by lane). Both tiers equal the interpreter bit for bit.
#[test]
fn partial_reductions_pair_their_results_in_order() {
    let specials = [
        f64::NAN,
        -0.0,
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        -3.5,
    ];
    let cases: [(&[usize], &[&[usize]]); 5] = [
        (&[1, 1], &[&[0], &[1]]),
        (&[2, 3], &[&[0], &[1]]),
        (&[5, 7], &[&[0], &[1]]),
        (&[3, 4, 5], &[&[0], &[1], &[2], &[0, 2], &[1, 2], &[0, 1]]),
        (&[6, 1, 3], &[&[0], &[2], &[1, 2]]),
    ];
    for (shape, axes_list) in cases {
        let n: usize = shape.iter().product();
        let b = Builder::new("reductions");
        let x = b.param("x", shape);
        let y = b.param("y", shape);
        let last: Vec<usize> = vec![shape[shape.len() - 1]];
        let row = b.param("row", &last);
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        perm.reverse();
        let mut outs = Vec::new();
        for &axes in axes_list {
            outs.push(x.sum_axes(axes));
            outs.push(x.max_axes(axes));
            outs.push((x * y + 1.0).sum_axes(axes));
            outs.push((x * y).max_axes(axes));
            outs.push(
                (y + row.expand(shape, &(0..shape.len() - 1).collect::<Vec<_>>())).sum_axes(axes),
            );
            // The same values read through a transpose (reduced along the reversed axes).
            let t = x.transpose(&perm);
            let mut t_axes: Vec<usize> = axes.iter().map(|&a| shape.len() - 1 - a).collect();
            t_axes.sort();
            outs.push(t.max_axes(&t_axes));
            outs.push(t.sum_axes(&t_axes));
        }
        let f = b.finish(&outs).unwrap();
        let xs: Vec<f64> = (0..n).map(|i| specials[i % specials.len()]).collect();
        let ys: Vec<f64> = (0..n)
            .map(|i| specials[(i / 2 + 3) % specials.len()] * 0.5)
            .collect();
        let rows: Vec<f64> = (0..last[0]).map(|i| i as f64 - 1.5).collect();
        check_agrees(&format!("reductions of {shape:?}"), &f, &[xs, ys, rows]);
        // Finite values too, where a sum's order shows in its bits.
        let xs: Vec<f64> = (0..n)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.1 + 1e16 * ((i % 3) as f64 - 1.0))
            .collect();
        let ys: Vec<f64> = (0..n).map(|i| 0.3 * i as f64 - 1.0).collect();
        let rows: Vec<f64> = (0..last[0]).map(|i| i as f64 * 0.7).collect();
        check_agrees(
            &format!("finite reductions of {shape:?}"),
            &f,
            &[xs, ys, rows],
        );
    }
}

/// Consecutive partial reductions over the same axes of one shape share one loop nest (at most
/// `MAX_REDUCTION_ROOTS`); a reduction reading another's result, or reducing other axes, takes
/// a nest of its own. Bits equal the interpreter's.
#[test]
fn partial_reductions_over_the_same_axes_share_a_loop() {
    let max = adjit::jit::plan::MAX_REDUCTION_ROOTS;
    let b = Builder::new("rows");
    let x = b.param("x", &[9, 5]);
    let y = b.param("y", &[9, 5]);
    let rows: Vec<Var> = (0..max + 2)
        .map(|i| {
            let v = x * (i as f64 + 0.5) + y;
            if i % 2 == 0 {
                v.sum_axes(&[1])
            } else {
                v.max_axes(&[1])
            }
        })
        .collect();
    let columns = (x * y).sum_axes(&[0]);
    // Reads the first row sum: cannot be computed in the nest that computes it.
    let after = (x - rows[0].expand(&[9, 5], &[1])).sum_axes(&[1]);
    let mut results = rows.clone();
    results.extend([columns, after]);
    let f = b.finish(&results).unwrap();
    let plan = adjit::jit::plan::plan(&f, 100_000);
    let loop_of = |v: Var| unit_computing(&plan, v.value()).unwrap();
    let first = loop_of(rows[0]);
    assert!(rows[..max].iter().all(|&r| loop_of(r) == first));
    assert_ne!(loop_of(rows[max]), first, "more than {max} in one nest");
    assert_eq!(loop_of(rows[max]), loop_of(rows[max + 1]));
    assert_ne!(loop_of(columns), loop_of(rows[max + 1]));
    assert!(plan.units.iter().all(|u| {
        let roots = adjit::jit::plan::unit_values(u, &plan.loop_roots);
        !(roots.contains(&after.value()) && roots.contains(&rows[0].value()))
    }));
    let xs: Vec<f64> = (0..45).map(|i| (i as f64 * 0.37).sin() * 1e3).collect();
    let ys: Vec<f64> = (0..45)
        .map(|i| if i == 7 { f64::NAN } else { 0.1 * i as f64 })
        .collect();
    check_agrees("rows", &f, &[xs, ys]);
}

/// An elementwise value that only one reduction nest reads (two of its sums, or one sum
/// through two products) is computed in that nest, not stored; one also read elsewhere, or
/// returned, is stored. Bits equal the interpreter's.
#[test]
fn values_only_a_reduction_nest_reads_are_computed_in_it() {
    let b = Builder::new("shared");
    let x = b.param("x", &[7, 5]);
    let y = b.param("y", &[7, 5]);
    let z = b.param("z", &[7, 5]);
    let d = x - y; // read by two sums of one nest
    let mask = x.ge(y); // read by two selects feeding two sums
    let zero = b.splat(0.0, &[7, 5]);
    let both = (d * d).sum_axes(&[1]);
    let cross = (d * z).sum_axes(&[1]);
    let picked = b.select(mask, z, zero).sum_axes(&[1]);
    let counted = b.select(mask, b.splat(1.0, &[7, 5]), zero).sum_axes(&[1]);
    let e = x * z; // also read by an elementwise result: stored
    let esum = (e * y).sum_axes(&[1]);
    let eout = e + 1.0;
    let f = b
        .finish(&[both, cross, picked, counted, esum, eout])
        .unwrap();
    let plan = adjit::jit::plan::plan(&f, 100_000);
    let computed = |v: Var| unit_computing(&plan, v.value()).is_some();
    for v in [d, mask] {
        assert_eq!(
            plan.kinds[v.value()],
            adjit::jit::plan::Kind::Fused,
            "{v:?}"
        );
        assert!(!computed(v), "{v:?} has a loop of its own");
    }
    assert!(computed(e), "e is read outside the nest");
    let xs: Vec<f64> = (0..35).map(|i| (i as f64 * 0.71).cos()).collect();
    let ys: Vec<f64> = (0..35).map(|i| (i as f64 * 0.37).sin()).collect();
    let zs: Vec<f64> = (0..35)
        .map(|i| if i == 3 { f64::NAN } else { i as f64 - 17.0 })
        .collect();
    check_agrees("shared", &f, &[xs, ys, zs]);
}
