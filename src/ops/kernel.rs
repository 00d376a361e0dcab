//! The reference kernel of every op: computes one instruction on flat row-major buffers.
//!
//! `Kernel::new` prepares an op for given operand types once (strided walks, matmul
//! dimensions); `Kernel::run` then computes it with no allocation. The interpreter plans one
//! kernel per instruction; the simplifier folds constants with the same kernels, so folding
//! gives exactly the interpreter's bits.

use super::contract::{self, MatmulDims};
use super::layout::{self, Walk};
use super::{binary, reduce, unary};
use crate::ir::{Binary, Compare, Op, Type, Unary};

/// An op prepared for operands of fixed types.
#[derive(Clone, Debug)]
pub enum Kernel {
    Unary(Unary),
    Binary(Binary),
    Compare(Compare),
    Select,
    ReduceSum(Box<Walk>),
    ReduceMax(Box<Walk>),
    /// `broadcast`, `transpose` and `slice`: one strided copy.
    Copy(Box<Walk>),
    /// Zero-fill, then place the operand.
    Pad(Box<Walk>),
    /// Place each operand in turn.
    Concat(Box<[Walk]>),
    Matmul(MatmulDims),
}

impl Kernel {
    /// The kernel of `op` on operands of types `args`, giving a result of type `ty`; `None` for
    /// `const` (data, not computation) and `reshape` (its operand's elements, unchanged).
    pub fn new(op: &Op, args: &[Type], ty: Type) -> Option<Kernel> {
        Some(match op {
            // A scan runs a planned body, which the executors own (`crate::interp`, `crate::jit`).
            Op::Const { .. } | Op::Reshape { .. } | Op::Scan { .. } => return None,
            Op::Unary(u) => Kernel::Unary(*u),
            Op::Binary(b) => Kernel::Binary(*b),
            Op::Compare(c) => Kernel::Compare(*c),
            Op::Select => Kernel::Select,
            Op::ReduceSum { axes } => {
                Kernel::ReduceSum(Box::new(reduce::reduce_walk(args[0].shape, *axes)))
            }
            Op::ReduceMax { axes } => {
                Kernel::ReduceMax(Box::new(reduce::reduce_walk(args[0].shape, *axes)))
            }
            Op::Broadcast { shape, axes } => {
                Kernel::Copy(Box::new(layout::broadcast_walk(*shape, *axes)))
            }
            Op::Transpose { perm } => {
                Kernel::Copy(Box::new(layout::transpose_walk(args[0].shape, *perm)))
            }
            Op::Slice { start, stop } => {
                Kernel::Copy(Box::new(layout::slice_walk(args[0].shape, *start, *stop)))
            }
            Op::Pad { lo, .. } => Kernel::Pad(Box::new(layout::place_walk(
                args[0].shape,
                ty.shape,
                &lo.to_vec(),
            ))),
            Op::Concat { axis } => {
                let axis = *axis as usize;
                let mut at = 0;
                let parts = args
                    .iter()
                    .map(|t| {
                        let mut lo = vec![0; t.rank()];
                        lo[axis] = at;
                        at += t.shape.get(axis);
                        layout::place_walk(t.shape, ty.shape, &lo)
                    })
                    .collect();
                Kernel::Concat(parts)
            }
            Op::Matmul { ta, tb } => {
                Kernel::Matmul(contract::matmul_dims(args[0], args[1], *ta, *tb))
            }
        })
    }

    /// Computes the result into `out`; `arg(i)` is operand `i`'s buffer.
    #[inline]
    pub fn run<'a>(&self, arg: impl Fn(usize) -> &'a [f64], out: &mut [f64]) {
        match self {
            Kernel::Unary(u) => unary::kernel(*u, arg(0), out),
            Kernel::Binary(b) => binary::kernel(*b, arg(0), arg(1), out),
            Kernel::Compare(c) => binary::compare_kernel(*c, arg(0), arg(1), out),
            Kernel::Select => binary::select_kernel(arg(0), arg(1), arg(2), out),
            Kernel::ReduceSum(w) => reduce::sum_kernel(w, arg(0), out),
            Kernel::ReduceMax(w) => reduce::max_kernel(w, arg(0), out),
            Kernel::Copy(w) => w.copy(arg(0), out),
            Kernel::Pad(w) => {
                out.fill(0.0);
                w.copy(arg(0), out);
            }
            Kernel::Concat(parts) => {
                for (i, w) in parts.iter().enumerate() {
                    w.copy(arg(i), out);
                }
            }
            Kernel::Matmul(d) => contract::kernel(d, arg(0), arg(1), out),
        }
    }
}
