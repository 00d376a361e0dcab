//! The text form round-trips exactly: for every function the Builder accepts, `parse(print(f))`
//! equals `f`. A property test builds random functions through `Builder::try_op` over the whole
//! op set, on shapes with empty, unit and rank-0 dimensions, naming values at random from names
//! that collide with the printed names of unnamed values (`v3`), with each other, or are odd
//! identifiers; the functions `finish` refuses must fail for their names alone.

use adjit::inputs::Rng;
use adjit::ir::{self, Builder, DType, Dims, Func, Literal, Op, Opcode, Type, Var};
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
        if let Some(v) = random_inst(&b, &mut rng, &pool) {
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

/// One random instruction on values of `pool`, if the op's shape rule accepts it.
fn random_inst<'b>(b: &'b Builder, rng: &mut Rng, pool: &[Var<'b>]) -> Option<Var<'b>> {
    let code = *pick(rng, &Opcode::ALL);
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

/// `parse(print(f)) == f`, and printing again gives the same text.
fn assert_round_trip(f: &Func, what: &str) {
    let text = f.to_string();
    let back = ir::parse(&text)
        .unwrap_or_else(|e| panic!("{what}: printed text does not parse: {e}\n{text}"));
    assert!(
        back == *f,
        "{what}: parse(print(f)) != f for\n{text}\nread back as {back:?}\nfrom {f:?}"
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
                if let Ok(v) = ad::vjp(&f, None) {
                    assert_round_trip(&v, "vjp");
                }
            }
            Err(e) => prop_assert!(refused_for_names(&e), "refused for another reason: {e}"),
        }
    }
}

/// The property above is not vacuous: the generator makes functions the Builder accepts, with
/// values named `v<k>` of another number among them, and functions it refuses for such names.
#[test]
fn the_generator_reaches_the_interesting_names() {
    let (mut accepted, mut foreign_v_names, mut refused_v_names) = (0, 0, 0);
    let mut opcodes = std::collections::HashSet::new();
    for seed in 0..500 {
        match build(seed, seed as usize % 20) {
            Ok(f) => {
                accepted += 1;
                opcodes.extend(f.insts.iter().map(|i| i.op.opcode()));
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
