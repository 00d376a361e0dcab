//! `Var`'s methods: the ops as Rust calls (`x.exp()`, `a.matmul(b)`, `x.sum_axes(&[0])`) and
//! the arithmetic operators, with numpy-style broadcasting made explicit.

use super::*;

impl<'b> Var<'b> {
    pub fn value(self) -> Value {
        self.v
    }

    pub fn builder(self) -> &'b Builder {
        self.b
    }

    pub fn ty(self) -> Type {
        self.b.type_of(self.v)
    }

    pub fn shape(self) -> Vec<usize> {
        self.ty().shape.to_vec()
    }

    pub fn rank(self) -> usize {
        self.ty().rank()
    }

    /// Gives the value a name in the text form (parameters keep their own). Its own default
    /// name `v<n>` leaves it unnamed, which prints the same. `finish` refuses names that would
    /// not read back: not identifiers, taken, or `v<k>` while value k is unnamed.
    pub fn named(self, name: &str) -> Var<'b> {
        let mut st = self.b.state.borrow_mut();
        let nparams = st.func.params.len();
        if let Some(i) = self.v.index().checked_sub(nparams) {
            let own = Value::from_default_name(name) == Some(self.v);
            st.func.insts[i].name = (!own).then(|| name.into());
        }
        self
    }

    #[track_caller]
    fn unary(self, u: Unary) -> Var<'b> {
        self.b.op(Op::Unary(u), &[self.v])
    }

    #[track_caller]
    pub fn abs(self) -> Var<'b> {
        self.unary(Unary::Abs)
    }
    #[track_caller]
    pub fn sign(self) -> Var<'b> {
        self.unary(Unary::Sign)
    }
    #[track_caller]
    pub fn exp(self) -> Var<'b> {
        self.unary(Unary::Exp)
    }
    #[track_caller]
    pub fn log(self) -> Var<'b> {
        self.unary(Unary::Log)
    }
    #[track_caller]
    pub fn log1p(self) -> Var<'b> {
        self.unary(Unary::Log1p)
    }
    #[track_caller]
    pub fn expm1(self) -> Var<'b> {
        self.unary(Unary::Expm1)
    }
    #[track_caller]
    pub fn sqrt(self) -> Var<'b> {
        self.unary(Unary::Sqrt)
    }
    #[track_caller]
    pub fn sin(self) -> Var<'b> {
        self.unary(Unary::Sin)
    }
    #[track_caller]
    pub fn cos(self) -> Var<'b> {
        self.unary(Unary::Cos)
    }
    #[track_caller]
    pub fn tan(self) -> Var<'b> {
        self.unary(Unary::Tan)
    }
    #[track_caller]
    pub fn tanh(self) -> Var<'b> {
        self.unary(Unary::Tanh)
    }
    #[track_caller]
    pub fn sigmoid(self) -> Var<'b> {
        self.unary(Unary::Sigmoid)
    }
    #[track_caller]
    pub fn floor(self) -> Var<'b> {
        self.unary(Unary::Floor)
    }
    #[track_caller]
    pub fn asin(self) -> Var<'b> {
        self.unary(Unary::Asin)
    }
    #[track_caller]
    pub fn acos(self) -> Var<'b> {
        self.unary(Unary::Acos)
    }
    #[track_caller]
    pub fn atan(self) -> Var<'b> {
        self.unary(Unary::Atan)
    }
    #[track_caller]
    pub fn sinh(self) -> Var<'b> {
        self.unary(Unary::Sinh)
    }
    #[track_caller]
    pub fn cosh(self) -> Var<'b> {
        self.unary(Unary::Cosh)
    }
    #[track_caller]
    pub fn erf(self) -> Var<'b> {
        self.unary(Unary::Erf)
    }

    /// `self * self`.
    #[track_caller]
    pub fn square(self) -> Var<'b> {
        self * self
    }

    /// Broadcasts two values to their common numpy shape.
    #[track_caller]
    pub fn broadcast_pair(self, other: Var<'b>) -> (Var<'b>, Var<'b>) {
        let (sa, sb) = (self.shape(), other.shape());
        if sa == sb {
            return (self, other);
        }
        let out = broadcast_shapes(&sa, &sb).unwrap_or_else(|e| panic!("adjit builder: {e}"));
        (self.broadcast_to(&out), other.broadcast_to(&out))
    }

    /// Broadcasts to `shape` numpy-style: a `reshape` drops stretched unit axes, then one
    /// `broadcast` inserts the missing axes.
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'b> {
        let s = self.shape();
        if s == shape {
            return self;
        }
        let r = shape.len();
        assert!(
            s.len() <= r,
            "adjit builder: cannot broadcast {s:?} to the lower rank {shape:?}"
        );
        let lead = r - s.len();
        let mut kept = Vec::new();
        let mut new_axes = Vec::new();
        for (j, &d) in shape.iter().enumerate() {
            match j.checked_sub(lead).map(|i| s[i]) {
                Some(sd) if sd == d => kept.push(d),
                Some(1) | None => new_axes.push(j),
                Some(sd) => panic!(
                    "adjit builder: cannot broadcast {s:?} to {shape:?} (axis {j}: {sd} vs {d})"
                ),
            }
        }
        let x = if kept.len() == s.len() {
            self
        } else {
            self.reshape(&kept)
        };
        self.b.op(
            Op::Broadcast {
                shape: Dims::new(shape),
                axes: Dims::new(&new_axes),
            },
            &[x.v],
        )
    }

    /// A constant with this value's shape.
    fn like(self, x: f64) -> Var<'b> {
        self.b.splat(x, &self.shape())
    }

    #[track_caller]
    fn binary(self, op: Binary, other: Var<'b>) -> Var<'b> {
        let (a, b) = self.broadcast_pair(other);
        self.b.op(Op::Binary(op), &[a.v, b.v])
    }

    #[track_caller]
    pub fn pow(self, other: Var<'b>) -> Var<'b> {
        self.binary(Binary::Pow, other)
    }
    #[track_caller]
    pub fn powf(self, y: f64) -> Var<'b> {
        self.binary(Binary::Pow, self.like(y))
    }
    #[track_caller]
    pub fn max(self, other: Var<'b>) -> Var<'b> {
        self.binary(Binary::Max, other)
    }
    #[track_caller]
    pub fn min(self, other: Var<'b>) -> Var<'b> {
        self.binary(Binary::Min, other)
    }
    /// `self * other`, but `+0` wherever `self` is zero, even where `other` is infinite or NaN
    /// (`azmul`: a tangent times a partial derivative that may not be finite).
    #[track_caller]
    pub fn azmul(self, other: Var<'b>) -> Var<'b> {
        self.binary(Binary::Azmul, other)
    }
    /// `atan2(self, x)`: the angle of the point `(x, self)`.
    #[track_caller]
    pub fn atan2(self, x: Var<'b>) -> Var<'b> {
        self.binary(Binary::Atan2, x)
    }

    #[track_caller]
    fn compare(self, op: Compare, other: Var<'b>) -> Var<'b> {
        let (a, b) = self.broadcast_pair(other);
        self.b.op(Op::Compare(op), &[a.v, b.v])
    }
    #[track_caller]
    pub fn lt(self, other: Var<'b>) -> Var<'b> {
        self.compare(Compare::Lt, other)
    }
    #[track_caller]
    pub fn le(self, other: Var<'b>) -> Var<'b> {
        self.compare(Compare::Le, other)
    }
    #[track_caller]
    pub fn gt(self, other: Var<'b>) -> Var<'b> {
        self.compare(Compare::Gt, other)
    }
    #[track_caller]
    pub fn ge(self, other: Var<'b>) -> Var<'b> {
        self.compare(Compare::Ge, other)
    }
    #[track_caller]
    pub fn eq(self, other: Var<'b>) -> Var<'b> {
        self.compare(Compare::Eq, other)
    }
    #[track_caller]
    pub fn ne(self, other: Var<'b>) -> Var<'b> {
        self.compare(Compare::Ne, other)
    }

    /// Sum over `axes` (removed from the shape).
    #[track_caller]
    pub fn sum_axes(self, axes: &[usize]) -> Var<'b> {
        self.b.op(
            Op::ReduceSum {
                axes: Dims::new(axes),
            },
            &[self.v],
        )
    }

    /// Sum of all elements, as a scalar.
    #[track_caller]
    pub fn sum(self) -> Var<'b> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        if axes.is_empty() {
            return self;
        }
        self.sum_axes(&axes)
    }

    /// Mean of all elements, as a scalar.
    #[track_caller]
    pub fn mean(self) -> Var<'b> {
        let n = self.ty().numel() as f64;
        self.sum() / n
    }

    /// Maximum over `axes` (removed from the shape).
    #[track_caller]
    pub fn max_axes(self, axes: &[usize]) -> Var<'b> {
        self.b.op(
            Op::ReduceMax {
                axes: Dims::new(axes),
            },
            &[self.v],
        )
    }

    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'b> {
        if self.shape() == shape {
            return self;
        }
        self.b.op(
            Op::Reshape {
                shape: Dims::new(shape),
            },
            &[self.v],
        )
    }

    #[track_caller]
    pub fn transpose(self, perm: &[usize]) -> Var<'b> {
        self.b.op(
            Op::Transpose {
                perm: Dims::new(perm),
            },
            &[self.v],
        )
    }

    /// The transpose of a matrix.
    #[track_caller]
    pub fn t(self) -> Var<'b> {
        self.transpose(&[1, 0])
    }

    #[track_caller]
    pub fn slice(self, start: &[usize], stop: &[usize]) -> Var<'b> {
        self.b.op(
            Op::Slice {
                start: Dims::new(start),
                stop: Dims::new(stop),
            },
            &[self.v],
        )
    }

    /// Element `i` of a vector, as a scalar.
    #[track_caller]
    pub fn at(self, i: usize) -> Var<'b> {
        self.slice(&[i], &[i + 1]).reshape(&[])
    }

    /// Inserts new `axes` to reach `shape` (the raw `broadcast` op: unlike `broadcast_to`, the
    /// operand's axes need not be the trailing ones).
    #[track_caller]
    pub fn expand(self, shape: &[usize], axes: &[usize]) -> Var<'b> {
        self.b.op(
            Op::Broadcast {
                shape: Dims::new(shape),
                axes: Dims::new(axes),
            },
            &[self.v],
        )
    }

    /// `start..stop` along one axis, everything along the others.
    #[track_caller]
    pub fn slice_axis(self, axis: usize, start: usize, stop: usize) -> Var<'b> {
        let shape = self.shape();
        let mut lo = vec![0; shape.len()];
        let mut hi = shape;
        lo[axis] = start;
        hi[axis] = stop;
        self.slice(&lo, &hi)
    }

    #[track_caller]
    pub fn pad(self, lo: &[usize], hi: &[usize]) -> Var<'b> {
        self.b.op(
            Op::Pad {
                lo: Dims::new(lo),
                hi: Dims::new(hi),
            },
            &[self.v],
        )
    }

    /// The raw op: rank-2 or rank-3 operands, optional transposes of the last two axes.
    #[track_caller]
    pub fn matmul_t(self, other: Var<'b>, ta: bool, tb: bool) -> Var<'b> {
        self.b.op(Op::Matmul { ta, tb }, &[self.v, other.v])
    }

    /// numpy's `matmul` for ranks 1 to 3: vectors become matrices by reshapes around the op.
    #[track_caller]
    pub fn matmul(self, other: Var<'b>) -> Var<'b> {
        let (sa, sb) = (self.shape(), other.shape());
        match (sa.len(), sb.len()) {
            (1, 1) => (self * other).sum(),
            (2, 1) => self
                .matmul_t(other.reshape(&[sb[0], 1]), false, false)
                .reshape(&[sa[0]]),
            (1, 2) => self
                .reshape(&[1, sa[0]])
                .matmul_t(other, false, false)
                .reshape(&[sb[1]]),
            _ => self.matmul_t(other, false, false),
        }
    }

    /// Inner product of two vectors of equal length.
    #[track_caller]
    pub fn dot(self, other: Var<'b>) -> Var<'b> {
        (self * other).sum()
    }
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $op:expr) => {
        impl<'b> $trait<Var<'b>> for Var<'b> {
            type Output = Var<'b>;
            #[track_caller]
            fn $method(self, rhs: Var<'b>) -> Var<'b> {
                self.binary($op, rhs)
            }
        }
        impl<'b> $trait<f64> for Var<'b> {
            type Output = Var<'b>;
            #[track_caller]
            fn $method(self, rhs: f64) -> Var<'b> {
                self.binary($op, self.like(rhs))
            }
        }
        impl<'b> $trait<Var<'b>> for f64 {
            type Output = Var<'b>;
            #[track_caller]
            fn $method(self, rhs: Var<'b>) -> Var<'b> {
                rhs.like(self).binary($op, rhs)
            }
        }
    };
}

binary_operator!(Add, add, Binary::Add);
binary_operator!(Sub, sub, Binary::Sub);
binary_operator!(Mul, mul, Binary::Mul);
binary_operator!(Div, div, Binary::Div);

impl<'b> Neg for Var<'b> {
    type Output = Var<'b>;
    #[track_caller]
    fn neg(self) -> Var<'b> {
        self.unary(Unary::Neg)
    }
}
