//! Building a `scan` from Rust: `Builder::scan` takes a closure that writes the body with its
//! own builder, and unpacks the packed result into the final carries and the stacked outputs.
//!
//! ```
//! use adjit::ir::{Builder, ScanOptions};
//! // The sum of squares of x: a carry `acc`, one per-step input, no per-step output.
//! let b = Builder::new("sumsq");
//! let x = b.param("x", &[5]);
//! let acc0 = b.scalar(0.0);
//! let out = b.scan(ScanOptions::new("step", 5), &[], &[acc0], &[x], |_, _, h, x| {
//!     (vec![h[0] + x[0] * x[0]], vec![])
//! });
//! let f = b.finish(&[out.carries[0]]).unwrap();
//! let y = adjit::interp::eval(&f, &[vec![1.0, 2.0, 3.0, 4.0, 5.0]]).unwrap();
//! assert_eq!(y[0], vec![55.0]);
//! ```

use super::builder::{Builder, Var};
use super::func::{Func, Role};
use super::op::Op;
use super::scan::{Body, Checkpoint, ScanShape};
use super::types::Type;
use crate::ops::ShapeError;

/// The attributes of a scan other than its operands: the body's name, the number of steps,
/// the direction and the checkpointing policy.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub name: String,
    pub length: usize,
    pub reverse: bool,
    pub checkpoint: Checkpoint,
}

impl ScanOptions {
    /// A forward scan of `length` steps whose body is named `name`, under the default policy.
    pub fn new(name: &str, length: usize) -> ScanOptions {
        ScanOptions {
            name: name.to_string(),
            length,
            reverse: false,
            checkpoint: Checkpoint::Auto,
        }
    }

    /// Steps run from `length - 1` down to 0.
    pub fn reverse(mut self, reverse: bool) -> ScanOptions {
        self.reverse = reverse;
        self
    }

    pub fn checkpoint(mut self, checkpoint: Checkpoint) -> ScanOptions {
        self.checkpoint = checkpoint;
        self
    }
}

/// A scan's results: the final carries and the stacked per-step outputs (each
/// `[length] + the body's output shape`), views of `packed`, the scan's own value.
#[derive(Clone, Debug)]
pub struct ScanOut<'b> {
    pub carries: Vec<Var<'b>>,
    pub ys: Vec<Var<'b>>,
    pub packed: Var<'b>,
}

/// A body closure: given the body's builder and its parameters (consts, carries, and one step's
/// slice of each xs), returns the new carries and the step's outputs.
pub trait BodyFn:
    for<'c> FnOnce(&'c Builder, &[Var<'c>], &[Var<'c>], &[Var<'c>]) -> (Vec<Var<'c>>, Vec<Var<'c>>)
{
}

impl<F> BodyFn for F where
    F: for<'c> FnOnce(
        &'c Builder,
        &[Var<'c>],
        &[Var<'c>],
        &[Var<'c>],
    ) -> (Vec<Var<'c>>, Vec<Var<'c>>)
{
}

impl Builder {
    /// A loop of `opts.length` steps: `consts` are loop-invariant, `init` the initial carries,
    /// and each of `xs` is sliced along its leading axis (which must be `length`) into the step's
    /// inputs. `body` writes one step. Panics with the shape rule's message on misuse;
    /// `try_scan` is the fallible twin.
    #[track_caller]
    pub fn scan<'b>(
        &'b self,
        opts: ScanOptions,
        consts: &[Var<'b>],
        init: &[Var<'b>],
        xs: &[Var<'b>],
        body: impl BodyFn,
    ) -> ScanOut<'b> {
        match self.try_scan(opts, consts, init, xs, body) {
            Ok(out) => out,
            Err(e) => panic!("adjit builder: {e}"),
        }
    }

    /// `scan`, returning the shape rule's or the body's error instead of panicking.
    pub fn try_scan<'b>(
        &'b self,
        opts: ScanOptions,
        consts: &[Var<'b>],
        init: &[Var<'b>],
        xs: &[Var<'b>],
        body: impl BodyFn,
    ) -> Result<ScanOut<'b>, ShapeError> {
        let refuse = |why: String| ShapeError {
            message: format!("scan @{}: {why}", opts.name),
        };
        let step_type = |x: Var<'b>| -> Result<Type, ShapeError> {
            let shape = x.shape();
            match shape.first() {
                Some(&n) if n == opts.length => Ok(Type::f64(&shape[1..])),
                _ => Err(refuse(format!(
                    "an xs operand is {}, but its leading axis must be the length {}",
                    x.ty(),
                    opts.length
                ))),
            }
        };
        let sb = Builder::new(opts.name.as_str());
        let group = |prefix: &str, types: Vec<Type>| -> Vec<Var<'_>> {
            types
                .into_iter()
                .enumerate()
                .map(|(i, t)| sb.param_with(&format!("{prefix}{i}"), t, Role::Wrt, None))
                .collect()
        };
        let c = group("c", consts.iter().map(|v| v.ty()).collect());
        let h = group("h", init.iter().map(|v| v.ty()).collect());
        let x_types: Vec<Type> = xs.iter().map(|&x| step_type(x)).collect::<Result<_, _>>()?;
        let x = group("x", x_types);
        let (new_h, ys) = body(&sb, &c, &h, &x);
        let results: Vec<Var<'_>> = new_h.iter().chain(&ys).copied().collect();
        let f = sb.finish(&results).map_err(|e| refuse(e.to_string()))?;
        let args: Vec<Var<'b>> = consts.iter().chain(init).chain(xs).copied().collect();
        self.try_scan_func(Body::new(f), consts.len(), init.len(), &args, &opts)
    }

    /// A scan of a ready body function over `args` (consts, carries, then xs), unpacked;
    /// `opts.name` is not used (the body has its name).
    pub fn try_scan_func<'b>(
        &'b self,
        body: Body,
        consts: usize,
        carries: usize,
        args: &[Var<'b>],
        opts: &ScanOptions,
    ) -> Result<ScanOut<'b>, ShapeError> {
        let (length, reverse, checkpoint) = (opts.length, opts.reverse, opts.checkpoint);
        let name = body.func().name.clone();
        let too_big = |what: &str| ShapeError {
            message: format!("scan @{name}: {what} is too large"),
        };
        let op = Op::Scan {
            body,
            replay: None,
            consts: u32::try_from(consts).map_err(|_| too_big("the number of consts"))?,
            carries: u32::try_from(carries).map_err(|_| too_big("the number of carries"))?,
            length: u32::try_from(length).map_err(|_| too_big("the length"))?,
            reverse,
            checkpoint,
        };
        let values: Vec<_> = args.iter().map(|a| a.value()).collect();
        let packed = self.try_op(op, &values)?;
        Ok(self.unpack_scan(packed))
    }

    /// The final carries and stacked outputs of the scan `packed`, as views of it.
    pub fn unpack_scan<'b>(&'b self, packed: Var<'b>) -> ScanOut<'b> {
        let Some((
            Op::Scan {
                body,
                replay,
                consts,
                carries,
                length,
                ..
            },
            _,
        )) = self.definition(packed.value())
        else {
            panic!("adjit builder: unpack_scan of a value that is not a scan");
        };
        let body_fn: &Func = body.func();
        let n_args = self.operands(packed.value()).len();
        let shape = ScanShape::new(
            body_fn,
            replay.as_ref().map(|r| r.func()),
            consts,
            carries,
            length,
            n_args,
        )
        .expect("a built scan has a valid shape");
        let (parts, _) = shape.parts().expect("a built scan has a valid shape");
        let views: Vec<Var<'b>> = parts
            .iter()
            .map(|&(off, t)| {
                let flat = packed.slice(&[off], &[off + t.numel()]);
                flat.reshape(&t.shape.to_vec())
            })
            .collect();
        let (carries, ys) = views.split_at(shape.carries);
        ScanOut {
            carries: carries.to_vec(),
            ys: ys.to_vec(),
            packed,
        }
    }
}
