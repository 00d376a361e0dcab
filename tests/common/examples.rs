//! The per-op examples of the derivative tests (`gradients.rs`, `jvp.rs`): a function
//! exercising each op, with inputs drawn inside its domain (`unary_domain`) and away from kinks.

use adjit::ir::{Builder, Func, Init, Op, Opcode, Role, Type, Unary, Var};

/// `sum(w * y + y * y / 2)` for a fixed pattern `w`: a scalar whose Hessian reaches through `y`.
pub fn loss<'b>(b: &'b Builder, y: Var<'b>) -> Var<'b> {
    let n = y.ty().numel();
    let w: Vec<f64> = (0..n)
        .map(|i| 0.5 + ((i * 7) % 5) as f64 * 0.3 - 0.6)
        .collect();
    let w = b.tensor(&y.shape(), &w);
    (w * y + y * y * 0.5).sum()
}

pub fn param<'b>(b: &'b Builder, name: &str, shape: &[usize], lo: f64, hi: f64) -> Var<'b> {
    b.param_with(
        name,
        Type::f64(shape),
        Role::Wrt,
        Some(Init::Uniform(lo, hi)),
    )
}

pub fn unary_domain(u: Unary) -> (f64, f64) {
    match u {
        Unary::Log | Unary::Sqrt => (0.5, 2.0),
        Unary::Log1p => (-0.5, 2.0),
        Unary::Tan => (-1.0, 1.0),
        // Away from the kinks and jumps, where the derivative is the constant one.
        Unary::Abs | Unary::Sign => (0.2, 1.0),
        Unary::Floor => (1.1, 1.9),
        // Inside (-1, 1), away from the infinite slopes at the ends.
        Unary::Asin | Unary::Acos => (-0.8, 0.8),
        Unary::Atan | Unary::Sinh | Unary::Cosh | Unary::Erf => (-2.0, 2.0),
        Unary::Neg
        | Unary::Exp
        | Unary::Expm1
        | Unary::Sin
        | Unary::Cos
        | Unary::Tanh
        | Unary::Sigmoid => (-2.0, 2.0),
    }
}

/// A scalar function exercising `op` (a loss of its outputs), with inputs drawn inside its
/// domain.
pub fn example(op: Opcode) -> Func {
    let b = Builder::new(format!("example_{}", op.name()));
    let ys = outputs(&b, op);
    let l = ys
        .iter()
        .map(|&y| loss(&b, y))
        .reduce(|a, c| a + c)
        .expect("at least one output");
    b.finish(&[l]).unwrap()
}

/// `example` before the loss: the op's outputs themselves, tensors of several shapes.
pub fn example_outputs(op: Opcode) -> Func {
    let b = Builder::new(format!("example_{}", op.name()));
    let ys = outputs(&b, op);
    b.finish(&ys).unwrap()
}

/// The values exercising `op` in `example`.
fn outputs(b: &Builder, op: Opcode) -> Vec<Var<'_>> {
    let y = match op {
        Opcode::Const => {
            let x = param(b, "x", &[2, 3], -1.0, 1.0);
            x * b.tensor(&[2, 3], &[1.5, -2.0, 0.25, 3.0, -0.5, 1.0])
        }
        Opcode::Unary(u) => {
            let (lo, hi) = unary_domain(u);
            let x = param(b, "x", &[2, 3], lo, hi);
            b.op(Op::Unary(u), &[x.value()])
        }
        Opcode::Binary(o) => {
            let (alo, ahi, blo, bhi) = match o {
                adjit::ir::Binary::Pow => (0.5, 2.0, -1.5, 1.5),
                adjit::ir::Binary::Div => (-1.0, 1.0, 0.5, 2.0),
                // x = b > 0: off the origin and the cut along the negative x axis.
                adjit::ir::Binary::Atan2 => (-1.0, 1.0, 0.5, 2.0),
                // Operands apart, so the comparison inside is not at a tie.
                adjit::ir::Binary::Max | adjit::ir::Binary::Min => (0.0, 1.0, 0.0, 1.0),
                _ => (-1.0, 1.0, -1.0, 1.0),
            };
            let x = param(b, "a", &[2, 3], alo, ahi);
            let z = param(b, "b", &[2, 3], blo, bhi);
            let z = if matches!(o, adjit::ir::Binary::Max | adjit::ir::Binary::Min) {
                // b = a + 0.3 * pattern(+1, -1, ...) keeps every pair 0.3 apart, both ways.
                z * 0.0 + x + b.tensor(&[2, 3], &[0.3, -0.3, 0.3, -0.3, 0.3, -0.3]) + z * 1e-3
            } else {
                z
            };
            b.op(Op::Binary(o), &[x.value(), z.value()])
        }
        Opcode::Compare(c) => {
            let x = param(b, "a", &[2, 3], -1.0, 1.0);
            let shift = b.tensor(&[2, 3], &[0.5, -0.5, 0.5, -0.5, 0.5, -0.5]);
            let z = x + shift;
            let mask = b.op(Op::Compare(c), &[x.value(), z.value()]);
            b.select(mask, x * x, x.sin())
        }
        Opcode::Select => {
            let x = param(b, "a", &[2, 3], -1.0, 1.0);
            let z = param(b, "b", &[2, 3], -1.0, 1.0);
            let mask = b
                .tensor(&[2, 3], &[1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
                .gt(b.splat(0.5, &[2, 3]));
            b.select(mask, x.sin(), z * z)
        }
        Opcode::ReduceSum => param(b, "x", &[2, 3, 4], -1.0, 1.0).sum_axes(&[0, 2]),
        Opcode::ReduceMax => {
            // Rows of well-separated values: the maximum does not switch within a step.
            let x = param(b, "x", &[3, 4], -0.01, 0.01);
            let spread = b.tensor(
                &[3, 4],
                &[0.0, 1.0, 2.0, 3.0, 3.0, 1.0, 0.0, 2.0, 1.0, 3.0, 2.0, 0.0],
            );
            (x + spread).max_axes(&[1])
        }
        Opcode::Broadcast => param(b, "x", &[3], -1.0, 1.0).expand(&[2, 3, 4], &[0, 2]),
        Opcode::Reshape => param(b, "x", &[2, 3], -1.0, 1.0).reshape(&[3, 2]),
        Opcode::Transpose => param(b, "x", &[2, 3, 4], -1.0, 1.0).transpose(&[2, 0, 1]),
        Opcode::Slice => param(b, "x", &[4, 5], -1.0, 1.0).slice(&[1, 0], &[3, 4]),
        Opcode::Pad => param(b, "x", &[2, 3], -1.0, 1.0).pad(&[1, 0], &[0, 2]),
        Opcode::Concat => {
            let x = param(b, "a", &[2, 3], -1.0, 1.0);
            let z = param(b, "c", &[2, 1], -1.0, 1.0);
            b.concat(&[x, z, x], 1)
        }
        Opcode::Scan => {
            // Two carries, a const and per-step inputs; both results and the ys are used.
            let w = param(b, "w", &[3], -1.0, 1.0);
            let h0 = param(b, "h", &[3], -1.0, 1.0);
            let xs = param(b, "xs", &[4, 3], -1.0, 1.0);
            let s0 = b.scalar(0.5);
            let opts = adjit::ir::ScanOptions::new("step", 4);
            let out = b.scan(opts, &[w], &[h0, s0], &[xs], |_, c, h, x| {
                let h2 = (h[0] * c[0] + x[0]).sin() + h[1] * 0.1;
                let s2 = h[1] * 0.5 + (h2 * h2).sum() * 0.1;
                (vec![h2, s2], vec![h2.tanh()])
            });
            out.carries[0] * out.carries[1] + out.ys[0].sum_axes(&[0])
        }
        Opcode::Matmul => {
            let x = param(b, "a", &[2, 3], -1.0, 1.0);
            let z = param(b, "c", &[3, 2], -1.0, 1.0);
            let s = param(b, "s", &[2, 2, 3], -1.0, 1.0);
            let plain = x.matmul_t(z, false, false);
            let both = z.matmul_t(x, true, true);
            let ta = x.matmul_t(x, true, false);
            let tb = z.matmul_t(z, false, true);
            let batched = s.matmul_t(s, false, true);
            return vec![plain, both, ta, tb, batched];
        }
    };
    vec![y]
}
