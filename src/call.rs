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
    /// Element counts, precomputed so that checking a call is a few compares.
    input_lens: Box<[usize]>,
    output_lens: Box<[usize]>,
}

impl Signature {
    pub fn of(f: &Func) -> Signature {
        let inputs: Vec<(String, Type)> = f.params.iter().map(|p| (p.name.clone(), p.ty)).collect();
        let outputs = f.result_types();
        Signature {
            input_lens: inputs.iter().map(|(_, t)| t.numel()).collect(),
            output_lens: outputs.iter().map(|t| t.numel()).collect(),
            inputs,
            outputs,
        }
    }

    /// Checks counts and lengths of a call's buffers.
    #[inline]
    pub fn check(&self, inputs: &[&[f64]], outputs: &[&mut [f64]]) -> Result<(), CallError> {
        let ok = inputs.len() == self.input_lens.len()
            && outputs.len() == self.output_lens.len()
            && inputs
                .iter()
                .zip(self.input_lens.iter())
                .all(|(x, &n)| x.len() == n)
            && outputs
                .iter()
                .zip(self.output_lens.iter())
                .all(|(y, &n)| y.len() == n);
        if ok {
            Ok(())
        } else {
            Err(self.mismatch(inputs, outputs))
        }
    }

    /// The first mismatch of a call that failed `check`.
    #[cold]
    fn mismatch(&self, inputs: &[&[f64]], outputs: &[&mut [f64]]) -> CallError {
        if inputs.len() != self.inputs.len() {
            return CallError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            };
        }
        for (index, ((name, ty), x)) in self.inputs.iter().zip(inputs).enumerate() {
            if x.len() != ty.numel() {
                return CallError::InputLength {
                    index,
                    name: name.clone(),
                    ty: *ty,
                    got: x.len(),
                };
            }
        }
        if outputs.len() != self.outputs.len() {
            return CallError::OutputCount {
                expected: self.outputs.len(),
                got: outputs.len(),
            };
        }
        for (index, (ty, y)) in self.outputs.iter().zip(outputs).enumerate() {
            if y.len() != ty.numel() {
                return CallError::OutputLength {
                    index,
                    ty: *ty,
                    got: y.len(),
                };
            }
        }
        unreachable!("mismatch is only called for calls that fail check")
    }
}
