//! adjit: a JIT-compiling graph differentiator.
//!
//! A function is built once as a graph of primitive ops on static-shape tensors, through the
//! [`ir::Builder`] or as `.ir` text; it can be checked, printed, parsed back, and run by the tape
//! interpreter ([`interp`]).
//!
//! ```
//! use adjit::ir::Builder;
//! use adjit::interp::Program;
//!
//! // f(x) = sin(x0) * exp(x1) + x0 * x1
//! let b = Builder::new("tiny");
//! let x = b.param("x", &[2]);
//! let (x0, x1) = (x.slice(&[0], &[1]).sum(), x.slice(&[1], &[2]).sum());
//! let y = x0.sin() * x1.exp() + x0 * x1;
//! let f = b.finish(&[y]).unwrap();
//!
//! let text = f.to_string();                       // the .ir text form
//! assert_eq!(adjit::ir::parse(&text).unwrap(), f); // parses back exactly
//!
//! let prog = Program::new(&f).unwrap();
//! let mut ws = prog.workspace();
//! let mut out = [0.0];
//! prog.run(&mut ws, &[&[0.5, 2.0]], &mut [&mut out]).unwrap();
//! assert!((out[0] - (0.5f64.sin() * 2.0f64.exp() + 1.0)).abs() < 1e-15);
//! ```

pub mod ad;
pub mod bench;
pub mod call;
pub mod check;
pub mod inputs;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod models;
pub mod ops;
pub mod opt;
