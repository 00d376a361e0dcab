//! The IR as data: types, the op table, functions, the builder, the text form and the verifier.
//!
//! Owns no algorithms beyond building, printing, parsing and checking: the math of each op lives
//! in `crate::ops`, transformations in `crate::ad` and `crate::simplify`. Knows nothing of Cranelift.

mod builder;
mod func;
mod hash;
mod op;
pub mod read;
pub mod scan;
mod scan_builder;
mod table;
mod types;
pub mod verify;
mod write;

pub use builder::{Builder, Var};
pub use func::{Def, Func, Init, Inst, Param, Role, Value};
pub use op::{
    Arity, Attr, AttrError, AttrType, Binary, BinaryFn, Compare, HostFn, Literal, Op, Opcode,
    Reduction, Unary, UnaryFn,
};
pub use read::{parse, parse_bytes, parse_with_lines, ParseError};
pub use scan::{Body, Checkpoint, ScanShape};
pub use scan_builder::{BodyFn, ScanOptions, ScanOut};
pub use types::{DType, Dims, Type, TypeError, MAX_ELEMENTS, MAX_RANK};
pub use verify::{verify, VerifyError};
pub use write::Names;
