//! The calling convention shared by the interpreter and the JIT: flat row-major `f64` buffers,
//! one per parameter and one per result, checked against the static signature.
//! Bool values travel as `0.0`/`1.0`.

use crate::ir::{Func, Type};
use std::fmt;

/// A call whose buffers do not match the function's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    InputCount {
        expected: usize,
        got: usize,
    },
    InputLength {
        index: usize,
        name: String,
        ty: Type,
        got: usize,
    },
    OutputCount {
        expected: usize,
        got: usize,
    },
    OutputLength {
        index: usize,
        ty: Type,
        got: usize,
    },
    /// The workspace was made for another function.
    ForeignWorkspace,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::InputCount { expected, got } => {
                write!(f, "expected {expected} inputs, got {got}")
            }
            CallError::InputLength {
                index,
                name,
                ty,
                got,
            } => write!(
                f,
                "input {index} ('{name}': {ty}) needs {} elements, got {got}",
                ty.numel()
            ),
            CallError::OutputCount { expected, got } => {
                write!(f, "expected {expected} output buffers, got {got}")
            }
            CallError::OutputLength { index, ty, got } => write!(
                f,
                "output {index} ({ty}) needs {} elements, got {got}",
                ty.numel()
            ),
            CallError::ForeignWorkspace => {
                write!(f, "the workspace belongs to another compiled function")
            }
        }
    }
}

impl std::error::Error for CallError {}

/// The types of a function's inputs and outputs, with parameter names for messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub inputs: Vec<(String, Type)>,
    pub outputs: Vec<Type>,
}

impl Signature {
    pub fn of(f: &Func) -> Signature {
        Signature {
            inputs: f.params.iter().map(|p| (p.name.clone(), p.ty)).collect(),
            outputs: f.result_types(),
        }
    }

    /// Checks counts and lengths of a call's buffers.
    pub fn check(&self, inputs: &[&[f64]], outputs: &[&mut [f64]]) -> Result<(), CallError> {
        if inputs.len() != self.inputs.len() {
            return Err(CallError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        for (index, ((name, ty), x)) in self.inputs.iter().zip(inputs).enumerate() {
            if x.len() != ty.numel() {
                return Err(CallError::InputLength {
                    index,
                    name: name.clone(),
                    ty: *ty,
                    got: x.len(),
                });
            }
        }
        if outputs.len() != self.outputs.len() {
            return Err(CallError::OutputCount {
                expected: self.outputs.len(),
                got: outputs.len(),
            });
        }
        for (index, (ty, y)) in self.outputs.iter().zip(outputs).enumerate() {
            if y.len() != ty.numel() {
                return Err(CallError::OutputLength {
                    index,
                    ty: *ty,
                    got: y.len(),
                });
            }
        }
        Ok(())
    }
}
