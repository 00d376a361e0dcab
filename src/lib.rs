//! adjit: a JIT-compiling graph differentiator.
//!
//! A function is built once as a graph of primitive ops on static-shape tensors, through the
//! [`ir::Builder`] or as `.ir` text. [`ad`] transforms it into one function computing value and
//! gradient (or value, gradient and Hessian-vector product), [`simplify`] simplifies it, and
//! [`jit`] compiles it to native code with Cranelift. The tape interpreter ([`interp`]) runs the
//! same IR, as the oracle the compiled code must match bit for bit and as a baseline; both
//! implement one trait, [`call::Executor`].
//!
//! ```
//! use adjit::ir::Builder;
//! use adjit::{ad, interp, jit};
//!
//! // f(x) = sin(x0) * exp(x1) + x0 * x1
//! let b = Builder::new("tiny");
//! let x = b.param("x", &[2]);
//! let (x0, x1) = (x.at(0), x.at(1));
//! let f = b.finish(&[x0.sin() * x1.exp() + x0 * x1]).unwrap();
//! assert_eq!(adjit::ir::parse(&f.to_string()).unwrap(), f); // the .ir text parses back
//!
//! let g = ad::grad(&f, None).unwrap(); // (x) -> (f, df/dx)
//! let compiled = jit::compile(&g).unwrap();
//! let mut ws = compiled.workspace();
//! let (mut y, mut dy) = ([0.0], [0.0; 2]);
//! compiled.call(&mut ws, &[&[0.5, 2.0]], &mut [&mut y, &mut dy]).unwrap();
//! assert!((dy[0] - (0.5f64.cos() * 2.0f64.exp() + 2.0)).abs() < 1e-12);
//!
//! // The interpreter gives the same bits.
//! let interpreted = interp::eval(&g, &[vec![0.5, 2.0]]).unwrap();
//! assert_eq!(interpreted[1], dy.to_vec());
//!
//! // Both executors implement `call::Executor`; its `eval` allocates the outputs for one call.
//! use adjit::call::Executor;
//! assert_eq!(compiled.eval(&[vec![0.5, 2.0]]).unwrap(), interpreted);
//! ```

// An `unsafe fn` does no unsafe operation outside an `unsafe` block, so that the word marks
// every such operation (`tests/tidy.rs` confines the blocks to `jit/compiled.rs` and `capi/`).
#![deny(unsafe_op_in_unsafe_fn)]

pub mod ad;
#[cfg(feature = "batch")]
pub mod batch;
pub mod call;
pub mod capi;
pub mod check;
pub mod inputs;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod models;
pub mod ops;
pub mod revolve;
pub mod simplify;
