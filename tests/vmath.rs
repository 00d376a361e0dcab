//! The vector math functions (`adjit::ops::vmath`: libmvec's two-lane `_ZGVbN2v_*` and, where
//! the CPU has AVX2, four-lane `_ZGVdN4v_*`): each lane's result depends on that lane's input
//! alone, at special values too, which is what lets the interpreter and compiled code group
//! elements into lanes differently and still agree bit for bit; and both executors compute
//! every element of an op with the function in use, in groups of lanes, their partial tails
//! and scalar registers alike.

use adjit::call::Executor;
use adjit::interp::Program;
use adjit::ir::{Builder, Op, Unary};
use adjit::ops::{unary, vmath};

/// Same bits (NaN payloads included).
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits()
}

/// Special and hard arguments: zeros, subnormals, infinities, NaNs of both signs and other
/// payloads, domain edges, overflow thresholds, huge arguments of periodic functions.
fn specials() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        1e-300,
        1e-20,
        -1e-9,
        f64::EPSILON,
        0.5,
        -0.5,
        1.0,
        -1.0,
        1.0 - f64::EPSILON / 2.0,
        -1.0 + f64::EPSILON / 2.0,
        1.0 + f64::EPSILON,
        -1.0 - f64::EPSILON,
        std::f64::consts::FRAC_PI_2,
        std::f64::consts::PI,
        -std::f64::consts::PI,
        20.0,
        -20.0,
        709.78,
        710.0,
        -708.4,
        -745.2,
        -746.0,
        1e5,
        1e22,
        -1e22,
        2f64.powi(1000),
        1e300,
        f64::MAX,
        -f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001),
        f64::from_bits(0xfff8_0000_dead_beef),
    ];
    // Ordinary values of many magnitudes, from a fixed generator.
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let mag = ((s >> 11) as f64 / (1u64 << 53) as f64) * 40.0 - 20.0;
        let sign = if s & 1 == 0 { 1.0 } else { -1.0 };
        v.push(sign * 2f64.powf(mag));
    }
    v
}

fn in_use() -> Vec<(Unary, vmath::Vector)> {
    let v: Vec<_> = Unary::ALL
        .into_iter()
        .filter_map(|u| vmath::vector(u).map(|f| (u, f)))
        .collect();
    let expected = cfg!(all(
        target_arch = "x86_64",
        target_os = "linux",
        target_env = "gnu"
    )) && std::env::var_os("ADJIT_NO_VMATH").is_none();
    if expected {
        // glibc 2.22 and later have these four.
        for u in [Unary::Sin, Unary::Cos, Unary::Exp, Unary::Log] {
            assert!(vmath::symbol(u).is_some(), "no libmvec function for {u:?}");
        }
    }
    v
}

/// Every vector function libmvec has here: the ones in use and the two-lane ones.
fn all_functions() -> Vec<(Unary, vmath::Vector)> {
    let mut v = in_use();
    v.extend(
        Unary::ALL
            .into_iter()
            .filter_map(|u| vmath::two_lane(u).map(|f| (u, f))),
    );
    v
}

#[test]
fn each_lane_depends_on_its_own_input_only() {
    let xs = specials();
    for (u, v) in all_functions() {
        for &a in &xs {
            let alone = v.one(a);
            for &b in &xs {
                // `a` in each lane in turn, `b` in the others.
                for lane in 0..4 {
                    let mut q = [b; 4];
                    q[lane] = a;
                    let r = v.quad(q);
                    assert!(
                        same(r[lane], alone),
                        "{}: lane {lane} at {a:e} is {:e} beside {b:e}, {alone:e} beside itself",
                        v.symbol,
                        r[lane]
                    );
                }
            }
            // The op's scalar function (the one host calls and constant folding use) agrees
            // with the function in use.
            if vmath::vector(u).is_some_and(|w| w.symbol == v.symbol) {
                assert!(same(unary::apply(u, a), alone), "{}({a:e})", u.name());
            }
        }
    }
}

#[test]
fn symbols_are_the_vector_abi_names() {
    for u in Unary::ALL {
        if let Some(v) = vmath::two_lane(u) {
            assert_eq!(v.symbol, format!("_ZGVbN2v_{}", u.name()));
            assert_eq!(v.lanes(), 2);
            assert_eq!(vmath::candidate(u, 2), Some(v.symbol));
        }
        if let Some(v) = vmath::vector(u) {
            assert_eq!(vmath::symbol(u), Some(v.symbol));
            let name = match v.own {
                true => Some(format!("adjit_{}4", u.name())),
                false => vmath::candidate(u, v.lanes()).map(str::to_string),
            };
            assert_eq!(name.as_deref(), Some(v.symbol));
            assert_eq!(vmath::is_own(u), v.own);
            assert_eq!(vmath::is_four_lane(u), v.lanes() == 4);
        }
    }
}

/// `y = u(x)` for a vector `x` of a length with a partial last group, `x[..k]` for each
/// shorter tail, and `z = u(s)` for a scalar.
#[test]
fn both_executors_compute_every_element_with_the_vector_function() {
    let xs = specials();
    for (u, v) in in_use() {
        let b = Builder::new("vm");
        let x = b.param("x", &[xs.len()]);
        let s = b.param("s", &[]);
        let (y, z) = (
            b.op(Op::Unary(u), &[x.value()]),
            b.op(Op::Unary(u), &[s.value()]),
        );
        let f = b.finish(&[y, z, y.sum()]).unwrap();
        let want: Vec<f64> = xs.iter().map(|&a| v.one(a)).collect();
        let interp = Program::new(&f).unwrap();
        let compiled = adjit::jit::compile(&f).unwrap();
        for (i, &a) in xs.iter().enumerate() {
            let inputs = [xs.clone(), vec![a]];
            for (who, out) in [
                ("interpreter", interp.eval(&inputs).unwrap()),
                ("jit", compiled.eval(&inputs).unwrap()),
            ] {
                if i == 0 {
                    for (k, (&g, &w)) in out[0].iter().zip(&want).enumerate() {
                        assert!(same(g, w), "{who} {}: element {k}", u.name());
                    }
                }
                assert!(same(out[1][0], want[i]), "{who} {}({a:e})", u.name());
            }
        }
    }
}

/// Every length from 1 to 9 (each partial group size), with the operand read from a parameter
/// (contiguous), a transposed view (copied first) and a computed value (materialized first),
/// and the result feeding further arithmetic: both executors equal the function element by
/// element.
#[test]
fn every_tail_and_operand_layout_gives_the_same_bits() {
    let xs = specials();
    for (u, v) in in_use() {
        for n in 1..=9 {
            let b = Builder::new("tails");
            let x = b.param("x", &[n, 2]);
            let t = x.t();
            let direct = b.op(Op::Unary(u), &[x.value()]);
            let viewed = b.op(Op::Unary(u), &[t.value()]);
            let computed = b.op(Op::Unary(u), &[(x * x).value()]);
            let f = b
                .finish(&[direct, viewed, computed * b.scalar(2.0)])
                .unwrap();
            let data: Vec<f64> = (0..2 * n).map(|i| xs[(7 * i + n) % xs.len()]).collect();
            let transposed: Vec<f64> = (0..2 * n).map(|k| data[(k % n) * 2 + k / n]).collect();
            let want = [
                data.iter().map(|&a| v.one(a)).collect::<Vec<_>>(),
                transposed.iter().map(|&a| v.one(a)).collect(),
                data.iter().map(|&a| v.one(a * a) * 2.0).collect(),
            ];
            let inputs = [data.clone()];
            let interp = Program::new(&f).unwrap().eval(&inputs).unwrap();
            let jit = adjit::jit::compile(&f).unwrap().eval(&inputs).unwrap();
            for (who, out) in [("interpreter", &interp), ("jit", &jit)] {
                for (r, w) in want.iter().enumerate() {
                    for (k, (&g, &e)) in out[r].iter().zip(w).enumerate() {
                        assert!(
                            same(g, e),
                            "{who} {} n={n} result {r} element {k}",
                            u.name()
                        );
                    }
                }
            }
        }
    }
}

/// The special values, each own function's limit and its neighbours of either sign, and near
/// multiples of pi/2, where the reduction cancels.
fn own_arguments() -> Vec<f64> {
    use adjit::ops::ownmath;
    let mut xs = specials();
    for limit in [ownmath::SIN_LIMIT, ownmath::EXP_LIMIT] {
        for x in [
            limit,
            f64::from_bits(limit.to_bits() + 1),
            f64::from_bits(limit.to_bits() - 1),
        ] {
            xs.extend([x, -x]);
        }
    }
    xs.extend((1..200).map(|k| k as f64 * std::f64::consts::FRAC_PI_2));
    xs
}

/// adjit's own `sin`, `cos` and `exp` (`ops::ownmath`) are in use where the CPU has AVX2 and
/// FMA, and their four-lane kernel, which both executors use for tensors, gives the scalar
/// reference recipe's bits, at the limits where the C library takes over too. (Compiled code's
/// inline copy is checked against the kernel by the tests above: single values are inline.)
#[test]
fn own_functions_equal_their_scalar_reference() {
    use adjit::ops::ownmath;
    let expected = ownmath::has_cpu_features()
        && std::env::var_os("ADJIT_NO_VMATH").is_none()
        && std::env::var_os("ADJIT_NO_OWN_MATH").is_none()
        && std::env::var("ADJIT_VMATH_LANES").map_or(true, |l| l.trim() != "2");
    let xs = own_arguments();
    let mut checked = 0;
    for u in [Unary::Sin, Unary::Cos, Unary::Exp] {
        let f = ownmath::Own::of(u).expect("one of adjit's own functions");
        assert_eq!(vmath::is_own(u), expected, "{}", u.name());
        let Some(v) = vmath::vector(u).filter(|v| v.own) else {
            continue;
        };
        for &a in &xs {
            let (got, want) = (v.one(a), f.one(a));
            assert!(
                same(got, want),
                "{}({a:e}): kernel {got:e}, reference {want:e}",
                u.name()
            );
            if !f.within(a) {
                let c = f.c_library(a);
                assert!(
                    same(got, c),
                    "{}({a:e}) beyond the limit: {got:e}, C {c:e}",
                    u.name()
                );
            }
        }
        checked += 1;
    }
    assert!(Unary::ALL.into_iter().all(
        |u| ownmath::Own::of(u).is_some() == matches!(u, Unary::Sin | Unary::Cos | Unary::Exp)
    ));
    assert_eq!(checked > 0, expected);
}

/// `sin` and `cos` of one scalar, which compiled code computes in one two-lane register
/// (`ownmath::sin_cos`) where both are inline: on the special values, the limits and near
/// multiples of pi/2, each equals the function in use and the interpreter, in either order;
/// the planner pairs them; and the recipe at phases 0 and 1/2 gives the scalar reference's
/// `sin` and `cos`.
#[test]
fn sin_and_cos_of_one_scalar_keep_their_bits() {
    use adjit::ops::ownmath::{self, Own, Scalar};
    let xs = own_arguments();
    for &x in xs.iter().filter(|&&x| Own::Sin.within(x)) {
        let s = ownmath::sin_cos(&mut Scalar, x, ownmath::PHASE_SIN);
        let c = ownmath::sin_cos(&mut Scalar, x, ownmath::PHASE_COS);
        assert!(same(s, Own::Sin.one(x)), "sin({x:e})");
        assert!(same(c, Own::Cos.one(x)), "cos({x:e})");
    }
    let value = unary::apply;
    for sin_first in [true, false] {
        let b = Builder::new("sin_cos");
        let s = b.param("s", &[]);
        let (sin, cos) = (
            b.op(Op::Unary(Unary::Sin), &[s.value()]),
            b.op(Op::Unary(Unary::Cos), &[s.value()]),
        );
        let f = if sin_first {
            b.finish(&[sin, cos])
        } else {
            b.finish(&[cos, sin])
        }
        .unwrap();
        let (sin_v, cos_v) = if sin_first {
            (f.results[0], f.results[1])
        } else {
            (f.results[1], f.results[0])
        };
        let plan = adjit::jit::plan::plan(&f, 1000);
        assert_eq!(plan.sin_cos[sin_v], Some(cos_v));
        assert_eq!(plan.sin_cos[cos_v], Some(sin_v));
        let interp = Program::new(&f).unwrap();
        let compiled = adjit::jit::compile(&f).unwrap();
        let (si, ci) = if sin_first { (0, 1) } else { (1, 0) };
        for &x in &xs {
            let inputs = [vec![x]];
            for (who, out) in [
                ("interpreter", interp.eval(&inputs).unwrap()),
                ("jit", compiled.eval(&inputs).unwrap()),
            ] {
                assert!(same(out[si][0], value(Unary::Sin, x)), "{who} sin({x:e})");
                assert!(same(out[ci][0], value(Unary::Cos, x)), "{who} cos({x:e})");
            }
        }
    }
}
