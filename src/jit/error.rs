//! `JitError`: why a function could not be compiled. Knows nothing of Cranelift's own error
//! types; they arrive here as text.

use crate::ir::VerifyError;
use std::fmt;

/// Why a function could not be compiled.
#[derive(Debug)]
pub enum JitError {
    Verify(VerifyError),
    /// The host CPU is not supported by Cranelift.
    Host(String),
    /// Cranelift refused the generated code.
    Codegen(String),
    /// An object file cannot hold this function (it needs adjit's runtime).
    Unexportable(String),
    /// The target of an object file is not one the code generator supports.
    Target(String),
    /// A bug in adjit: the plan or the lowering broke an invariant.
    Internal(String),
}

impl fmt::Display for JitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitError::Verify(e) => e.fmt(f),
            JitError::Host(e) => write!(f, "this CPU is not supported by the code generator: {e}"),
            JitError::Codegen(e) => write!(f, "code generation failed: {e}"),
            JitError::Unexportable(e) => write!(f, "cannot export this function: {e}"),
            JitError::Target(e) => e.fmt(f),
            JitError::Internal(e) => write!(f, "internal error, please report: {e}"),
        }
    }
}

impl std::error::Error for JitError {}
