//! The arithmetic each derivative needs, against the function's: per shipped model, the
//! multiply-adds of its products (`matmul`), the elements its other arithmetic ops compute
//! (elementwise ops and reductions), and how many of those are transcendental (`sin`, `exp`,
//! `tanh`, ...), for `f`, the jvp, f+grad and H v alone in each mode, as the transforms emit
//! them (simplified). A scan counts its body once per step.
//!
//! The ratios bound the times' ratios from below where the code runs each kind of work at the
//! same rate in both functions: issue 11's jvp / f and hvp / (f+grad) targets.
//!
//! `cargo run --release --example work`

use adjit::ad::{self, HvpMode};
use adjit::ir::{Func, Op, Unary};
use adjit::models;

/// The work of one function: product multiply-adds, other arithmetic elements, and how many of
/// those are transcendental.
#[derive(Clone, Copy, Default)]
struct Work {
    fmas: f64,
    arith: f64,
    transcendental: f64,
}

impl Work {
    fn add(&mut self, o: Work, times: f64) {
        self.fmas += o.fmas * times;
        self.arith += o.arith * times;
        self.transcendental += o.transcendental * times;
    }
}

/// Whether `u` is computed by a polynomial or a library call rather than one instruction.
fn transcendental(u: Unary) -> bool {
    !matches!(
        u,
        Unary::Neg | Unary::Abs | Unary::Sign | Unary::Sqrt | Unary::Floor
    )
}

fn work(f: &Func) -> Work {
    let mut w = Work::default();
    for inst in &f.insts {
        let n = inst.ty.numel() as f64;
        match &inst.op {
            Op::Matmul { ta, .. } => {
                let a = f.value_type(inst.args[0]);
                let contraction = a.shape.get(a.rank() - if *ta { 2 } else { 1 });
                w.fmas += n * contraction as f64;
            }
            Op::Unary(u) => {
                w.arith += n;
                if transcendental(*u) {
                    w.transcendental += n;
                }
            }
            Op::Binary(_) | Op::Compare(_) | Op::Select => w.arith += n,
            Op::ReduceSum { .. } | Op::ReduceMax { .. } => {
                w.arith += f.value_type(inst.args[0]).numel() as f64;
            }
            Op::Scan { body, length, .. } => w.add(work(body.func()), f64::from(*length)),
            Op::Const { .. }
            | Op::Broadcast { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Concat { .. } => {}
        }
    }
    w
}

/// `a / b` as a ratio, or a dash where `b` does no such work.
fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".into()
    } else {
        format!("{:.2}", a / b)
    }
}

fn main() -> Result<(), String> {
    println!(
        "model          | jvp/f: fma  arith  transc | fwdrev/fg: fma  arith  transc | revrev/fg: fma  arith  transc"
    );
    for m in models::ALL {
        if !m.scalar() {
            continue;
        }
        let f = (m.build)();
        let e = |r: Result<Func, ad::AdError>| r.map_err(|e| format!("{}: {e}", m.name));
        let f_w = work(&f);
        let jvp = work(&e(ad::jvp(&f, None))?);
        let fg = work(&e(ad::grad(&f, None))?);
        let fwdrev = work(&e(ad::hvp_only(&f, None, HvpMode::FwdRev))?);
        let revrev = work(&e(ad::hvp_only(&f, None, HvpMode::RevRev))?);
        let cols = |a: Work, b: Work| {
            format!(
                "{:>5}  {:>5}  {:>6}",
                ratio(a.fmas, b.fmas),
                ratio(a.arith, b.arith),
                ratio(a.transcendental, b.transcendental)
            )
        };
        println!(
            "{:<14} |       {} |          {} |          {}",
            m.name,
            cols(jvp, f_w),
            cols(fwdrev, fg),
            cols(revrev, fg)
        );
    }
    Ok(())
}
