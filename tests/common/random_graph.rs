//! Random well-typed functions over the whole op set, for differential tests (simplified
//! against unsimplified, interpreter against JIT). Every op of `Opcode::ALL` can be drawn; the
//! result is one scalar (the sum of the last values made), so grad and hvp apply.
//!
//! Shapes reach the edges: rank 0, size-1 axes, and empty axes (zero-element tensors, whose
//! reductions, matmuls and pads still have elements), drawn from the parameters' shapes and
//! from slices, broadcasts and concats that make new ones.

use adjit::inputs::Rng;
use adjit::ir::{Builder, Checkpoint, Func, Opcode, ScanOptions, Var};
use std::cell::Cell;

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.below(xs.len())]
}

const SHAPES: [&[usize]; 11] = [
    &[],
    &[3],
    &[2, 3],
    &[3, 2],
    &[2, 2, 3],
    &[4],
    &[1],
    &[3, 1],
    &[0],
    &[2, 0],
    &[0, 1, 3],
];

/// The size of a new axis (of a broadcast): usually 2, sometimes 1 or 0.
fn new_axis(rng: &mut Rng) -> usize {
    *pick(rng, &[2, 2, 2, 1, 0])
}

/// A random function of `ops` instructions or so, drawn from `seed`.
pub fn random_func(seed: u64, ops: usize) -> Func {
    let mut rng = Rng::new(seed);
    let b = Builder::new("random");
    let nparams = 1 + rng.below(3);
    let mut pool: Vec<Var> = (0..nparams)
        .map(|i| b.param(&format!("p{i}"), pick::<&[usize]>(&mut rng, &SHAPES)))
        .collect();
    for _ in 0..ops {
        let op = *pick(&mut rng, &Opcode::ALL);
        if let Some(v) = make(&b, &mut rng, op, &pool) {
            pool.push(v);
        }
    }
    // The result: the sum of the last few f64 values, so most of the graph is live.
    let mut total = b.scalar(0.0);
    for v in pool.iter().rev().take(4) {
        total = total + v.sum();
    }
    b.finish(&[total]).expect("random graphs are well typed")
}

/// A constant: often one the simplifier treats specially, sometimes a non-finite one.
fn constant(rng: &mut Rng) -> f64 {
    const SPECIAL: [f64; 9] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.0,
        0.5,
        f64::INFINITY,
        f64::NAN,
        -3.0,
    ];
    if rng.uniform() < 0.5 {
        *pick(rng, &SPECIAL)
    } else {
        rng.range(-2.0, 2.0)
    }
}

/// A value of the pool; bool values are never in the pool.
fn any<'b>(rng: &mut Rng, pool: &[Var<'b>]) -> Var<'b> {
    *pick(rng, pool)
}

/// A pool value of the same shape as `a`, or a constant of that shape.
fn partner<'b>(b: &'b Builder, rng: &mut Rng, pool: &[Var<'b>], a: Var<'b>) -> Var<'b> {
    let same: Vec<Var> = pool
        .iter()
        .copied()
        .filter(|v| v.shape() == a.shape())
        .collect();
    if same.len() > 1 && rng.uniform() < 0.8 {
        *pick(rng, &same)
    } else {
        b.splat(constant(rng), &a.shape())
    }
}

fn make<'b>(b: &'b Builder, rng: &mut Rng, op: Opcode, pool: &[Var<'b>]) -> Option<Var<'b>> {
    let a = any(rng, pool);
    let shape = a.shape();
    let rank = shape.len();
    Some(match op {
        Opcode::Const => {
            let s = *pick(rng, &SHAPES);
            let n: usize = s.iter().product();
            if rng.uniform() < 0.5 {
                b.splat(constant(rng), s)
            } else {
                let data: Vec<f64> = (0..n).map(|_| constant(rng)).collect();
                b.tensor(s, &data)
            }
        }
        Opcode::Unary(u) => b.op(adjit::ir::Op::Unary(u), &[a.value()]),
        Opcode::Binary(o) => {
            let c = partner(b, rng, pool, a);
            b.op(adjit::ir::Op::Binary(o), &[a.value(), c.value()])
        }
        Opcode::Compare(c) => {
            let d = partner(b, rng, pool, a);
            let mask = b.op(adjit::ir::Op::Compare(c), &[a.value(), d.value()]);
            b.select(mask, a, d)
        }
        Opcode::Select => {
            let c = partner(b, rng, pool, a);
            let d = partner(b, rng, pool, a);
            b.select(a.gt(c), c, d)
        }
        Opcode::ReduceSum | Opcode::ReduceMax => {
            if rank == 0 {
                return None;
            }
            let axes: Vec<usize> = (0..rank).filter(|_| rng.uniform() < 0.5).collect();
            let axes = if axes.is_empty() {
                vec![rng.below(rank)]
            } else {
                axes
            };
            if op == Opcode::ReduceSum {
                a.sum_axes(&axes)
            } else {
                a.max_axes(&axes)
            }
        }
        Opcode::Broadcast => {
            if rank >= 3 {
                return None;
            }
            let at = rng.below(rank + 1);
            let mut s = shape.clone();
            s.insert(at, new_axis(rng));
            a.expand(&s, &[at])
        }
        Opcode::Reshape => {
            let mut s = shape.clone();
            if rng.uniform() < 0.5 {
                s.reverse();
            } else {
                s = vec![s.iter().product()];
            }
            if s == shape {
                s.push(1);
            }
            a.reshape(&s)
        }
        Opcode::Transpose => {
            if rank < 2 {
                return None;
            }
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.rotate_left(1 + rng.below(rank - 1));
            a.transpose(&perm)
        }
        Opcode::Slice => {
            if rank == 0 {
                return None;
            }
            let mut start = Vec::new();
            let mut stop = Vec::new();
            // Mostly non-empty slices; one in eight axes is sliced to nothing.
            for &d in &shape {
                if d == 0 || rng.uniform() < 0.125 {
                    let s = rng.below(d + 1);
                    start.push(s);
                    stop.push(s);
                } else {
                    let s = rng.below(d);
                    start.push(s);
                    stop.push(s + 1 + rng.below(d - s));
                }
            }
            a.slice(&start, &stop)
        }
        Opcode::Pad => {
            let lo: Vec<usize> = shape.iter().map(|_| rng.below(2)).collect();
            let hi: Vec<usize> = shape.iter().map(|_| rng.below(2)).collect();
            a.pad(&lo, &hi)
        }
        Opcode::Concat => {
            if rank == 0 {
                return None;
            }
            let c = partner(b, rng, pool, a);
            b.concat(&[a, c, a], rng.below(rank))
        }
        Opcode::Scan => scan(b, rng, a, pool)?,
        Opcode::Matmul => {
            if rank < 2 {
                return None;
            }
            let x = if rank > 3 { return None } else { a };
            let (ta, tb) = *pick(rng, &[(false, true), (true, false)]);
            x.matmul_t(x, ta, tb)
        }
    })
}

thread_local! {
    /// How many scan bodies are being drawn around the current op: bodies nest once at most.
    static NESTING: Cell<usize> = const { Cell::new(0) };
    /// Bodies drawn so far, for their names.
    static BODIES: Cell<usize> = const { Cell::new(0) };
}

/// A scan of 0–3 steps carrying `a`, with a const and per-step inputs from the pool, under a
/// random policy and direction; its body is itself a small random graph.
fn scan<'b>(b: &'b Builder, rng: &mut Rng, a: Var<'b>, pool: &[Var<'b>]) -> Option<Var<'b>> {
    if NESTING.with(|n| n.get()) >= 2 {
        return None;
    }
    let length = *pick(rng, &[0, 1, 2, 3]);
    let c = any(rng, pool);
    let x = any(rng, pool);
    if x.rank() >= adjit::ir::MAX_RANK {
        return None;
    }
    let mut stacked = vec![length];
    stacked.extend(x.shape());
    let xs = x.expand(&stacked, &[0]);
    let policy = *pick(
        rng,
        &[
            Checkpoint::Auto,
            Checkpoint::All,
            Checkpoint::Carry,
            Checkpoint::Binomial(1),
            Checkpoint::Binomial(2),
        ],
    );
    // Distinct names: bodies of one name print renamed (`body.1`), which reads back as another
    // function.
    let name = format!("body{}", BODIES.with(|n| n.replace(n.get() + 1)));
    let opts = ScanOptions::new(&name, length)
        .reverse(rng.uniform() < 0.3)
        .checkpoint(policy);
    let seed = rng.below(1 << 30) as u64;
    NESTING.with(|n| n.set(n.get() + 1));
    let out = b.scan(opts, &[c], &[a], &[xs], |sb, c, h, x| {
        let mut rng = Rng::new(seed);
        let mut pool = vec![c[0], h[0], x[0]];
        for _ in 0..2 + rng.below(4) {
            let op = *pick(&mut rng, &Opcode::ALL);
            if let Some(v) = make(sb, &mut rng, op, &pool) {
                pool.push(v);
            }
        }
        let next = pool
            .iter()
            .rev()
            .find(|v| v.ty() == h[0].ty())
            .copied()
            .unwrap_or(h[0]);
        (vec![next], vec![*pool.last().expect("not empty")])
    });
    NESTING.with(|n| n.set(n.get() - 1));
    Some(if rng.uniform() < 0.5 {
        out.carries[0]
    } else {
        out.ys[0]
    })
}
