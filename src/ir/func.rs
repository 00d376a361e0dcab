//! Functions: parameters, the instruction list (the tape) and results.
//!
//! A `Value` is an index into one numbering shared by parameters and instructions: parameters
//! come first, then one value per instruction, in order. Instructions are in topological order
//! (an operand's index is below its user's), so the list itself is the evaluation order.

use super::op::Op;
use super::types::Type;
use std::fmt;

/// A value of a function: a parameter or an instruction's result. Prints as `v7`, the name an
/// unnamed value has in the text form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub u32);

impl Value {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The value whose default name `name` is (`v7` is value 7), or `None` for any other name.
    /// Only the writer's exact spelling counts: `v07` and `v7x` are ordinary names.
    pub fn from_default_name(name: &str) -> Option<Value> {
        let digits = name.strip_prefix('v')?;
        let canonical = digits == "0" || !digits.starts_with('0');
        if digits.is_empty() || !canonical || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Value)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether a parameter is differentiated by default (`Wrt`) or is data (`data` in the text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Wrt,
    Data,
}

/// How default inputs for a parameter are drawn (the `~ ...` of the text form). Draws come from
/// a seeded generator (`crate::inputs`), so every command runs without input files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform on `[lo, hi)`; the default is `uniform(-1, 1)`.
    Uniform(f64, f64),
    /// Normal with mean and standard deviation.
    Normal(f64, f64),
    /// `-1` or `+1` with equal probability: labels.
    Sign,
    /// One-hot rows: along the last axis, one random entry is 1, the others 0.
    OneHot,
}

impl Init {
    pub const DEFAULT: Init = Init::Uniform(-1.0, 1.0);
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Type,
    pub role: Role,
    /// `None` means the default distribution, and prints nothing.
    pub init: Option<Init>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub op: Op,
    pub args: Box<[Value]>,
    pub ty: Type,
    /// A name given in the text or by the builder; `None` prints as `v<index>`. Never
    /// `Some("v<index>")` of its own index in a valid function (see `crate::ir::verify`).
    pub name: Option<Box<str>>,
}

/// Where a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Def {
    Param(usize),
    Inst(usize),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    pub name: String,
    pub params: Vec<Param>,
    pub insts: Vec<Inst>,
    pub results: Vec<Value>,
}

impl Func {
    pub fn new(name: impl Into<String>) -> Func {
        Func {
            name: name.into(),
            params: Vec::new(),
            insts: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Number of values: parameters plus instructions.
    pub fn num_values(&self) -> usize {
        self.params.len() + self.insts.len()
    }

    pub fn def(&self, v: Value) -> Def {
        let i = v.index();
        if i < self.params.len() {
            Def::Param(i)
        } else {
            Def::Inst(i - self.params.len())
        }
    }

    /// The value an instruction defines.
    pub fn inst_value(&self, inst: usize) -> Value {
        Value((self.params.len() + inst) as u32)
    }

    pub fn param_value(&self, param: usize) -> Value {
        Value(param as u32)
    }

    /// Type of a value. Panics on an index outside the function (the verifier reports those).
    #[track_caller]
    pub fn value_type(&self, v: Value) -> Type {
        match self.def(v) {
            Def::Param(i) => self.params[i].ty,
            Def::Inst(i) => self.insts[i].ty,
        }
    }

    /// Type of a value, or `None` for an index outside the function.
    pub fn try_value_type(&self, v: Value) -> Option<Type> {
        match self.def(v) {
            Def::Param(i) => self.params.get(i).map(|p| p.ty),
            Def::Inst(i) => self.insts.get(i).map(|x| x.ty),
        }
    }

    /// The explicit name of a value, if it has one (parameters always do).
    pub fn value_name(&self, v: Value) -> Option<&str> {
        match self.def(v) {
            Def::Param(i) => self.params.get(i).map(|p| p.name.as_str()),
            Def::Inst(i) => self.insts.get(i).and_then(|x| x.name.as_deref()),
        }
    }

    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    pub fn result_types(&self) -> Vec<Type> {
        self.results.iter().map(|&v| self.value_type(v)).collect()
    }

    /// Names for the results, as the C API and exported objects report them: a result's own
    /// name where the text gave it one, else `y` (one result) or `y0`, `y1`, ...
    pub fn result_names(&self) -> Vec<String> {
        let n = self.results.len();
        let named = |k: usize, v: Value| {
            self.value_name(v)
                .filter(|name| Value::from_default_name(name).is_none())
                .map_or_else(
                    || if n == 1 { "y".into() } else { format!("y{k}") },
                    str::to_string,
                )
        };
        self.results
            .iter()
            .enumerate()
            .map(|(k, &v)| named(k, v))
            .collect()
    }
}
