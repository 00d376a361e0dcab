//! The text form round-trips exactly: for every function the Builder accepts, `parse(print(f))`
//! equals `f`. A property test builds random functions through `Builder::try_op` over the whole
//! op set, on shapes with empty, unit and rank-0 dimensions, naming values at random from names
//! that collide with the printed names of unnamed values (`v3`), with each other, or are odd
//! identifiers; the functions `finish` refuses must fail for their names alone.
//!
//! Scans (`Builder::try_scan`) have random bodies, nested scans among them, under names that
//! collide: when two different functions share a name, the writer renames one, and the text
//! reads back as the renamed function, which prints as the same text (`ir::write`).

use adjit::inputs::Rng;
use adjit::ir::{
    self, Body, Builder, Checkpoint, DType, Dims, Func, Literal, Op, Opcode, ScanOptions, Type, Var,
};
use adjit::{ad, simplify};
use proptest::prelude::*;

const SHAPES: [&[usize]; 8] = [&[], &[0], &[1], &[3], &[2, 3], &[1, 0], &[3, 1], &[2, 1, 3]];

/// Names for values: printed names of unnamed values, near misses, odd identifiers, keywords of
/// the text form, and a few that are not identifiers at all.
const NAMES: [&str; 24] = [
    "a", "b", "x", "v0", "v1", "v2", "v3", "v4", "v5", "v7", "v10", "v07", "v3_1", "V3", "_", "_9",
    "a.b", "data", "func", "inf", "nan", "true", "return", "1a",
];

/// Names for parameters: `v<n>` is refused unless it is parameter n.
const PARAM_NAMES: [&str; 8] = ["x", "y", "a", "v0", "v1", "v2", "_p", "w.b"];

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.below(xs.len())]
}

/// A random function, or why the Builder refused it.
fn build(seed: u64, ops: usize) -> Result<Func, ir::VerifyError> {
    let mut rng = Rng::new(seed);
    let b = Builder::new("rt");
    let mut pool: Vec<Var> = Vec::new();
    let mut params: Vec<&str> = Vec::new();
    for _ in 0..1 + rng.below(3) {
        // Parameter names must be distinct (a second one panics): duplicates are skipped.
        let name = *pick(&mut rng, &PARAM_NAMES);
        if !params.contains(&name) {
            params.push(name);
            pool.push(b.param(name, pick::<&[usize]>(&mut rng, &SHAPES)));
        }
    }
    for _ in 0..ops {
        if let Some(v) = random_inst(&b, &mut rng, &pool, 0) {
            name_at_random(&mut rng, v);
            pool.push(v);
        }
    }
    let results: Vec<Var> = (0..1 + rng.below(2))
        .map(|_| *pick(&mut rng, &pool))
        .collect();
    b.finish(&results)
}

/// Names `v` half of the time: mostly with a fresh name, sometimes with its own printed name
/// `v<n>`, a neighbour's, any `v<k>`, or a name of `NAMES` (which may be taken).
fn name_at_random(rng: &mut Rng, v: Var) {
    let own = v.value().0 as usize;
    let name = match rng.below(24) {
        0..=11 => return,
        12..=15 => format!("t{own}"),
        16 => format!("_{own}.x"),
        17 => format!("v{own}_"),
        18 => format!("v{own}"),
        19 => format!("v{}", (own + 2 * rng.below(2)).saturating_sub(1)),
        20 => format!("v{}", rng.below(40)),
        _ => pick(rng, &NAMES).to_string(),
    };
    v.named(&name);
}

/// One random instruction on values of `pool`, if the op's shape rule accepts it; `depth` is
/// the number of scans around it.
fn random_inst<'b>(
    b: &'b Builder,
    rng: &mut Rng,
    pool: &[Var<'b>],
    depth: usize,
) -> Option<Var<'b>> {
    let code = *pick(rng, &Opcode::ALL);
    // Scans are an eighth of the ops, so that functions hold several and nest them.
    if code == Opcode::Scan || rng.below(8) == 0 {
        return random_scan(b, rng, pool, depth);
    }
    let x = *pick(rng, pool);
    let same = rng.below(2) == 0;
    let other = |rng: &mut Rng| if same { x } else { *pick(rng, pool) };
    let args: Vec<Var> = match code.arity() {
        ir::Arity::Exactly(0) => vec![],
        ir::Arity::Exactly(1) => vec![x],
        ir::Arity::Exactly(2) => vec![x, other(rng)],
        ir::Arity::Exactly(_) => vec![*pick(rng, pool), x, other(rng)],
        ir::Arity::AtLeast(_) => (0..1 + rng.below(3)).map(|_| other(rng)).collect(),
    };
    let op = random_op(rng, code, x.ty())?;
    let args: Vec<_> = args.iter().map(|a| a.value()).collect();
    b.try_op(op, &args).ok()
}

/// Names of scan bodies: the same name for different bodies, the builder's own name (`rt`),
/// and a name the writer could choose for a renamed `step`.
const BODY_NAMES: [&str; 6] = ["step", "step", "body", "step.1", "rt", "a.b"];

/// The most scans around a scan the generator makes.
const MAX_SCAN_DEPTH: usize = 2;

fn random_policy(rng: &mut Rng) -> Checkpoint {
    *pick(
        rng,
        &[
            Checkpoint::Auto,
            Checkpoint::All,
            Checkpoint::Carry,
            Checkpoint::Binomial(1),
            Checkpoint::Binomial(50),
        ],
    )
}

/// A random scan over the f64 values of `pool`: up to 1 const, 2 carries and 2 xs, a body of
/// random instructions (scans among them) returning up to 2 outputs, either direction, any
/// policy. Returns the packed result or one of its unpacked parts.
fn random_scan<'b>(
    b: &'b Builder,
    rng: &mut Rng,
    pool: &[Var<'b>],
    depth: usize,
) -> Option<Var<'b>> {
    if depth >= MAX_SCAN_DEPTH {
        return None;
    }
    let floats: Vec<Var> = pool
        .iter()
        .copied()
        .filter(|v| v.ty().dtype == DType::F64)
        .collect();
    if floats.is_empty() {
        return None;
    }
    let consts: Vec<Var> = (0..rng.below(2)).map(|_| *pick(rng, &floats)).collect();
    let init: Vec<Var> = (0..rng.below(3)).map(|_| *pick(rng, &floats)).collect();
    let ranked: Vec<Var> = floats
        .iter()
        .copied()
        .filter(|v| !v.shape().is_empty())
        .collect();
    let (length, xs) = if ranked.is_empty() {
        (rng.below(4), Vec::new())
    } else {
        let n = pick(rng, &ranked).shape()[0];
        let fits: Vec<Var> = ranked
            .iter()
            .copied()
            .filter(|v| v.shape()[0] == n)
            .collect();
        (
            n,
            (0..1 + rng.below(2)).map(|_| *pick(rng, &fits)).collect(),
        )
    };
    let name = *pick(rng, &BODY_NAMES);
    let opts = ScanOptions::new(name, length)
        .reverse(rng.below(2) == 0)
        .checkpoint(random_policy(rng));
    let out = b
        .try_scan(opts, &consts, &init, &xs, |sb, c, h, x| {
            let mut body: Vec<Var> = c.iter().chain(h).chain(x).copied().collect();
            if body.is_empty() {
                body.push(sb.scalar(0.5));
            }
            for _ in 0..rng.below(6) {
                if let Some(v) = random_inst(sb, rng, &body, depth + 1) {
                    name_at_random(rng, v);
                    body.push(v);
                }
            }
            let carries = h
                .iter()
                .map(|&hv| {
                    let same: Vec<Var> =
                        body.iter().copied().filter(|v| v.ty() == hv.ty()).collect();
                    *pick(rng, &same)
                })
                .collect();
            let floats: Vec<Var> = body
                .iter()
                .copied()
                .filter(|v| v.ty().dtype == DType::F64)
                .collect();
            let ys = (0..rng.below(3)).map(|_| *pick(rng, &floats)).collect();
            (carries, ys)
        })
        .ok()?;
    let parts: Vec<Var> = out.carries.iter().chain(&out.ys).copied().collect();
    if parts.is_empty() || rng.below(3) == 0 {
        Some(out.packed)
    } else {
        Some(*pick(rng, &parts))
    }
}

fn dims(items: &[usize]) -> Dims {
    Dims::new(items)
}

/// A random op of `code`, its attributes drawn to fit an operand of type `t` most of the time.
fn random_op(rng: &mut Rng, code: Opcode, t: Type) -> Option<Op> {
    let shape = t.shape.to_vec();
    let rank = shape.len();
    Some(match code {
        Opcode::Const => random_const(rng),
        Opcode::Unary(u) => Op::Unary(u),
        Opcode::Binary(o) => Op::Binary(o),
        Opcode::Compare(c) => Op::Compare(c),
        Opcode::Select => Op::Select,
        Opcode::ReduceSum => Op::ReduceSum {
            axes: dims(&subset(rng, rank)),
        },
        Opcode::ReduceMax => Op::ReduceMax {
            axes: dims(&subset(rng, rank)),
        },
        Opcode::Broadcast => {
            let at = rng.below(rank + 1);
            let mut out = shape.clone();
            out.insert(at, rng.below(3));
            Op::Broadcast {
                shape: Dims::try_new(&out).ok()?,
                axes: dims(&[at]),
            }
        }
        Opcode::Reshape => Op::Reshape {
            shape: dims(&[t.numel()]),
        },
        Opcode::Transpose => Op::Transpose {
            perm: dims(&(0..rank).rev().collect::<Vec<_>>()),
        },
        Opcode::Slice => {
            let start: Vec<usize> = shape.iter().map(|&d| rng.below(d + 1)).collect();
            let stop: Vec<usize> = start
                .iter()
                .zip(&shape)
                .map(|(&s, &d)| s + rng.below(d - s + 1))
                .collect();
            Op::Slice {
                start: dims(&start),
                stop: dims(&stop),
            }
        }
        Opcode::Pad => Op::Pad {
            lo: dims(&(0..rank).map(|_| rng.below(2)).collect::<Vec<_>>()),
            hi: dims(&(0..rank).map(|_| rng.below(2)).collect::<Vec<_>>()),
        },
        Opcode::Concat => Op::Concat {
            axis: rng.below(rank.max(1)) as u32,
        },
        Opcode::Matmul => Op::Matmul {
            ta: rng.below(2) == 0,
            tb: rng.below(2) == 0,
        },
        // Built by `random_scan`, with a body.
        Opcode::Scan => return None,
    })
}

/// A sorted random subset of `0..rank`.
fn subset(rng: &mut Rng, rank: usize) -> Vec<usize> {
    (0..rank).filter(|_| rng.below(2) == 0).collect()
}

/// A constant of a random type: splat or elements, with values the writer must spell exactly.
fn random_const(rng: &mut Rng) -> Op {
    const SPECIAL: [f64; 7] = [
        0.0,
        -0.0,
        1.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-310,
    ];
    let dtype = if rng.below(4) == 0 {
        DType::Bool
    } else {
        DType::F64
    };
    let ty = Type::new(dtype, pick::<&[usize]>(rng, &SHAPES));
    let scalar = |rng: &mut Rng| match dtype {
        DType::Bool => rng.below(2) as f64,
        DType::F64 if rng.below(2) == 0 => *pick(rng, &SPECIAL),
        DType::F64 => rng.normal(),
    };
    let value = if rng.below(2) == 0 {
        Literal::Splat(scalar(rng))
    } else {
        Literal::Elements((0..ty.numel()).map(|_| scalar(rng)).collect())
    };
    Op::Const { ty, value }
}

/// The functions `f`'s scans reach, one per content (`Body::eq`).
fn reached(f: &Func) -> Vec<Body> {
    let mut seen: Vec<Body> = Vec::new();
    let mut stack: Vec<Body> = Vec::new();
    let mut walk = |g: &Func, stack: &mut Vec<Body>| {
        for inst in &g.insts {
            if let Op::Scan { body, replay, .. } = &inst.op {
                for b in std::iter::once(body).chain(replay) {
                    if !seen.contains(b) {
                        seen.push(b.clone());
                        stack.push(b.clone());
                    }
                }
            }
        }
    };
    walk(f, &mut stack);
    while let Some(b) = stack.pop() {
        walk(b.func(), &mut stack);
    }
    seen
}

/// Whether two different functions of `f` (itself or functions its scans reach) share a name,
/// so that the writer renames one.
fn names_collide(f: &Func) -> bool {
    let mut names: Vec<String> = reached(f).iter().map(|b| b.func().name.clone()).collect();
    names.push(f.name.clone());
    names.sort();
    names.windows(2).any(|w| w[0] == w[1])
}

fn has_scan(f: &Func) -> bool {
    f.insts.iter().any(|i| i.op.opcode() == Opcode::Scan)
}

/// `parse(print(f)) == f` (unless two of its functions share a name: then it reads back
/// renamed), the text read back verifies, and printing it again gives the same text.
fn assert_round_trip(f: &Func, what: &str) {
    let text = f.to_string();
    let back = ir::parse(&text)
        .unwrap_or_else(|e| panic!("{what}: printed text does not parse: {e}\n{text}"));
    if !names_collide(f) {
        assert!(
            back == *f,
            "{what}: parse(print(f)) != f for\n{text}\nread back as {back:?}\nfrom {f:?}"
        );
    }
    ir::verify(&back).unwrap_or_else(|e| panic!("{what}: read back, fails: {e}\n{text}"));
    assert!(
        !names_collide(&back),
        "{what}: names still collide in\n{text}"
    );
    assert_eq!(back.to_string(), text, "{what}: printed twice differently");
}

/// Why a function the Builder refused was refused must be one of its names.
fn refused_for_names(e: &ir::VerifyError) -> bool {
    e.issues.iter().all(|i| {
        [
            "already defined",
            "printed name",
            "not an identifier",
            "may be named v<n>",
        ]
        .iter()
        .any(|w| i.message.contains(w))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn builder_functions_read_back_exactly(seed in any::<u64>(), ops in 0usize..20) {
        match build(seed, ops) {
            Ok(f) => {
                assert_round_trip(&f, "built");
                assert_round_trip(&simplify::simplify(&f).unwrap(), "simplified");
                // Reverse mode through random scans can panic (src/ad/scan.rs); the adjoints
                // of fixed scans are read back below (`adjoint_scans_read_back`).
                if has_scan(&f) {
                    return Ok(());
                }
                if let Ok(v) = ad::vjp(&f, None) {
                    assert_round_trip(&v, "vjp");
                }
            }
            Err(e) => prop_assert!(refused_for_names(&e), "refused for another reason: {e}"),
        }
    }
}

/// The property above is not vacuous: the generator makes functions the Builder accepts, with
/// values named `v<k>` of another number among them, and functions it refuses for such names;
/// functions with scans, nested scans, and different functions of one name.
#[test]
fn the_generator_reaches_the_interesting_names() {
    let (mut accepted, mut foreign_v_names, mut refused_v_names) = (0, 0, 0);
    let (mut scans, mut nested, mut collide) = (0, 0, 0);
    let mut opcodes = std::collections::HashSet::new();
    for seed in 0..500 {
        match build(seed, seed as usize % 20) {
            Ok(f) => {
                accepted += 1;
                opcodes.extend(f.insts.iter().map(|i| i.op.opcode()));
                scans += usize::from(has_scan(&f));
                nested += usize::from(reached(&f).iter().any(|b| has_scan(b.func())));
                collide += usize::from(names_collide(&f));
                let np = f.params.len();
                foreign_v_names += f
                    .insts
                    .iter()
                    .enumerate()
                    .filter(|(k, i)| {
                        let named = i.name.as_deref().and_then(ir::Value::from_default_name);
                        named.is_some_and(|v| v.index() != np + k)
                    })
                    .count();
            }
            Err(e) => {
                refused_v_names += e
                    .issues
                    .iter()
                    .filter(|i| {
                        i.message
                            .contains("is the printed name of the unnamed value")
                    })
                    .count();
            }
        }
    }
    assert!(accepted >= 150, "only {accepted} of 500 functions accepted");
    assert!(foreign_v_names >= 20, "{foreign_v_names}");
    assert!(refused_v_names >= 20, "{refused_v_names}");
    assert!(
        scans >= 50 && nested >= 15 && collide >= 15,
        "{scans} {nested} {collide}"
    );
    let missing: Vec<_> = Opcode::ALL
        .iter()
        .filter(|c| !opcodes.contains(c))
        .collect();
    assert!(missing.is_empty(), "never built: {missing:?}");
}

/// The issue's case: a value named like another value's printed name.
#[test]
fn a_name_taken_from_an_unnamed_value_is_refused() {
    let b = Builder::new("f");
    let x = b.param("x", &[2]);
    let e = x.exp(); // v1, unnamed
    let s = (e * e).named("v1").sum();
    let err = b.finish(&[s]).expect_err("v1 would print twice");
    let msg = err.to_string();
    assert!(
        msg.contains("'v1' is the printed name of the unnamed value v1"),
        "{msg}"
    );
}

#[test]
fn a_name_taken_from_a_named_value_reads_back() {
    let b = Builder::new("f");
    let x = b.param("x", &[2]);
    let e = x.exp().named("e");
    let s = (e * e).named("v1").sum().named("v3");
    let f = b.finish(&[s]).unwrap();
    assert_eq!(f.insts[1].name.as_deref(), Some("v1"));
    assert_eq!(
        f.insts[2].name, None,
        "its own printed name leaves a value unnamed"
    );
    assert_round_trip(&f, "named");
}

#[test]
fn text_names_of_other_numbers_read_back() {
    let text = "func @zsoft(x: f64[0]) -> (f64[0]) {
    v7: f64[0] = exp x
    v8: f64[] = reduce_sum v7 [axes=[0]]
    v10: f64[0] = broadcast v8 [axes=[0], shape=[0]]
    v11: f64[0] = mul v10, v7
    return v11
}
";
    let f = ir::parse(text).unwrap();
    ir::verify(&f).unwrap();
    assert_eq!(f.to_string(), text);
    assert_round_trip(&f, "zsoft");
    assert_round_trip(&ad::vjp(&f, None).unwrap(), "vjp");
}

#[test]
fn a_parameter_named_for_another_number_is_refused() {
    let text = "func @f(x: f64[], v0: f64[]) -> (f64[]) {\n    return v0\n}\n";
    let f = ir::parse(text).unwrap();
    let e = ir::verify(&f).unwrap_err().to_string();
    assert!(e.contains("parameter 'v0' is value number 1: a parameter may be named v<n> only as value number n"), "{e}");
    let b = Builder::new("f");
    b.param("x", &[]);
    let y = b.param("v0", &[]);
    let e = b.finish(&[y]).unwrap_err().to_string();
    assert!(e.contains("parameter 'v0' is value number 1: a parameter may be named v<n> only as value number n"), "{e}");
}

#[test]
fn nan_constants_read_back_bit_for_bit() {
    let b = Builder::new("f");
    let x = b.param("x", &[2]);
    let odd = f64::from_bits(0xFFF0_0000_0000_0001); // a negative signalling NaN
    let c = b.tensor(&[2], &[-f64::NAN, odd]) + b.splat(f64::NAN, &[2]) + b.splat(odd, &[2]);
    let f = b.finish(&[(x + c).sum()]).unwrap();
    let text = f.to_string();
    assert!(text.contains("[-nan, -nan]"), "{text}");
    assert_round_trip(&f, "nan");
}

/// Every checkpointing policy and direction, several carries and outputs, a scan inside a
/// scan's body: each reads back exactly, and the text says what was built.
#[test]
fn scans_read_back_exactly() {
    let policies = [
        Checkpoint::Auto,
        Checkpoint::All,
        Checkpoint::Carry,
        Checkpoint::Binomial(50),
    ];
    for (i, policy) in policies.into_iter().enumerate() {
        let b = Builder::new("rnn");
        let w = b.param("w", &[3]);
        let h0 = b.param("h0", &[3]);
        let xs = b.param("xs", &[5, 3]);
        let opts = ScanOptions::new("cell", 5)
            .reverse(i % 2 == 1)
            .checkpoint(policy);
        let out = b.scan(opts, &[w], &[h0, b.scalar(0.0)], &[xs], |sb, c, h, x| {
            // An inner scan over the step's row: its running sum.
            let inner = ScanOptions::new("acc", 3).checkpoint(Checkpoint::Carry);
            let row = sb.scan(inner, &[], &[sb.scalar(0.0)], &[x[0]], |_, _, a, e| {
                (vec![a[0] + e[0]], vec![a[0] * e[0]])
            });
            let h1 = (h[0] * c[0] + x[0]).tanh();
            (vec![h1, h[1] + row.carries[0]], vec![h1, row.ys[0]])
        });
        let loss = out.carries[1] + out.ys[0].sum() + out.ys[1].sum();
        let f = b.finish(&[loss, out.carries[0].sum()]).unwrap();
        let text = f.to_string();
        assert!(text.starts_with("func @acc("), "{text}");
        assert_eq!(text.matches("func @").count(), 3, "{text}");
        assert_eq!(text.contains("reverse=true"), i % 2 == 1, "{text}");
        assert!(
            text.contains("checkpoint=carry, consts=0, length=3]"),
            "{text}"
        );
        let spelled = format!("checkpoint={policy}");
        assert_eq!(
            text.contains(&spelled),
            policy != Checkpoint::Auto,
            "{text}"
        );
        assert!(!text.contains("checkpoint=auto"), "{text}");
        assert_round_trip(&f, &format!("policy {policy}"));
    }
}

/// A body: the sum of squares of the step's input.
fn square<'c>(
    _: &'c Builder,
    _: &[Var<'c>],
    h: &[Var<'c>],
    x: &[Var<'c>],
) -> (Vec<Var<'c>>, Vec<Var<'c>>) {
    (vec![h[0] + x[0] * x[0]], vec![])
}

/// A body: `h <- k h + x`.
fn scaled(k: f64) -> impl ir::BodyFn {
    move |_, _, h, x| (vec![h[0] * k + x[0]], vec![])
}

/// The adjoint of a scan is made of scans (and, under `binomial`, a replay step) whose bodies
/// the transform names: under every policy, the gradient reads back exactly. (Not yet the hvp,
/// which panics in `src/ad/scan.rs`.)
#[test]
fn adjoint_scans_read_back() {
    for policy in [
        Checkpoint::Auto,
        Checkpoint::All,
        Checkpoint::Carry,
        Checkpoint::Binomial(2),
    ] {
        let b = Builder::new("rnn");
        let w = b.param("w", &[3]);
        let h0 = b.param("h0", &[3]);
        let xs = b.param("xs", &[5, 3]);
        let opts = ScanOptions::new("cell", 5).checkpoint(policy);
        let out = b.scan(opts, &[w], &[h0], &[xs], |_, c, h, x| {
            let h1 = (h[0] * c[0] + x[0]).tanh();
            (vec![h1], vec![h1.sum()])
        });
        let f = b.finish(&[out.ys[0].sum() + out.carries[0].sum()]).unwrap();
        let g = ad::grad(&f, None).unwrap();
        assert!(g.to_string().matches("func @").count() >= 2, "{g}");
        assert_round_trip(&g, &format!("grad under {policy}"));
    }
}

/// Bodies equal by content print once and read back as one shared function; a scan of no
/// operands prints none.
#[test]
fn equal_bodies_print_once() {
    let b = Builder::new("twice");
    let x = b.param("x", &[4]);
    let one = b.scan(
        ScanOptions::new("sq", 4),
        &[],
        &[b.scalar(0.0)],
        &[x],
        square,
    );
    let y = x.sin();
    let two = b.scan(
        ScanOptions::new("sq", 4),
        &[],
        &[b.scalar(1.0)],
        &[y],
        square,
    );
    let gen = b.scan(ScanOptions::new("gen", 2), &[], &[], &[], |sb, _, _, _| {
        (vec![], vec![sb.scalar(2.0)])
    });
    let f = b
        .finish(&[one.carries[0] + two.carries[0] + gen.ys[0].sum()])
        .unwrap();
    let text = f.to_string();
    assert_eq!(text.matches("func @sq(").count(), 1, "{text}");
    assert!(
        text.contains(" = scan [body=@gen, carries=0, consts=0, length=2]"),
        "{text}"
    );
    assert_round_trip(&f, "twice");
    let back = ir::parse(&text).unwrap();
    let bodies: Vec<&Body> = back
        .insts
        .iter()
        .filter_map(|i| match &i.op {
            Op::Scan { body, .. } => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(std::sync::Arc::ptr_eq(&bodies[0].0, &bodies[1].0));
}

/// Different functions of one name: the first keeps it, the others print as `NAME.k` with a
/// `k` no function has; the entry always keeps its name. Read back, they keep the printed
/// names, and print as the same text.
#[test]
fn different_bodies_of_one_name_are_renamed() {
    let b = Builder::new("step");
    let x = b.param("x", &[2]);
    let mut total = b.scalar(0.0);
    for (name, k) in [("step", 1.0), ("step", 2.0), ("step.1", 3.0), ("step", 4.0)] {
        let out = b.scan(
            ScanOptions::new(name, 2),
            &[],
            &[b.scalar(0.0)],
            &[x],
            scaled(k),
        );
        total = total + out.carries[0];
    }
    let f = b.finish(&[total]).unwrap();
    let text = f.to_string();
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("func @"))
        .map(|l| &l[6..l.find('(').unwrap()])
        .collect();
    assert_eq!(
        headers,
        ["step.2", "step.3", "step.1", "step.4", "step"],
        "{text}"
    );
    for h in &headers[..4] {
        assert!(text.contains(&format!("body=@{h},")), "{h} in {text}");
    }
    assert_round_trip(&f, "renamed");
}

/// Functions may come in any order; the writer puts callees first.
#[test]
fn functions_read_in_any_order() {
    let step = "func @step(c0: f64[], h0: f64[20], x0: f64[]) -> (f64[20], f64[]) {
    a: f64[20] = mul h0, h0
    b: f64[] = mul x0, c0
    return a, b
}
";
    let main = "func @main(z: f64[20], data xs: f64[100]) -> (f64[]) {
    k: f64[] = const 0.5
    s: f64[120] = scan k, z, xs [body=@step, carries=1, checkpoint=binomial(50), consts=1, length=100, reverse=true]
    y: f64[100] = slice s [start=[20], stop=[120]]
    r: f64[] = reduce_sum y [axes=[0]]
    return r
}
";
    let callee_first = format!("{step}\n{main}");
    let f = ir::parse(&format!("{main}\n; the body, after its caller\n\n{step}")).unwrap();
    ir::verify(&f).unwrap();
    assert_eq!(f, ir::parse(&callee_first).unwrap());
    assert_eq!(f.to_string(), callee_first);
    assert_round_trip(&f, "main");
}

/// A scan with a replay step prints and reads both functions.
#[test]
fn a_replay_scan_reads_back() {
    let text = "func @bstep(c0: f64[], r0: f64[2], h0: f64[2], x0: f64[]) -> (f64[2], f64[]) {
    h1: f64[2] = mul h0, r0
    return h1, x0
}

func @rstep(c0: f64[], r0: f64[2], x0: f64[]) -> (f64[2]) {
    b: f64[2] = broadcast x0 [axes=[0], shape=[2]]
    r1: f64[2] = add r0, b
    return r1
}

func @main(k: f64[], r: f64[2], h: f64[2], xs: f64[3]) -> (f64[5]) {
    s: f64[5] = scan k, r, h, xs [body=@bstep, carries=1, consts=1, length=3, replay=@rstep, reverse=true]
    return s
}
";
    let f = ir::parse(text).unwrap();
    ir::verify(&f).unwrap();
    assert_eq!(f.to_string(), text);
    assert_round_trip(&f, "replay");
}
