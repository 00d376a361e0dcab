//! The verifier: checks every invariant of a function and collects every violation.
//!
//! Invariants:
//! 1. Parameter and value names are identifiers, unique, and not the keyword `return`. Names of
//!    the form `v<n>` are the printed names of unnamed values, so that the text reads back
//!    exactly: a parameter named `v<n>` is value n; an instruction is never named its own
//!    `v<n>` (it is stored unnamed), nor `v<n>` while value n is an unnamed instruction.
//! 2. Every operand is a value of the function defined before its use (so the instruction list
//!    is a topological order, and SSA holds by construction).
//! 3. Every instruction has the arity of its op, and its declared type is exactly what the op's
//!    shape rule gives for its operand types (`crate::ops::result_type`); a `const` declares the
//!    type it carries.
//! 4. The function returns at least one value, and every returned value exists.
//! 5. Every type is within the limits of `Type::try_new` (rank, dimensions, element count), the
//!    limits the Builder and the reader enforce, with the same message.
//!
//! Errors carry the instruction's index and its rendered line, so callers can point at the text.

use super::func::{Def, Func};
use super::op::Op;
use super::read::quote;
use super::write::Names;
use super::Value;
use std::collections::HashSet;
use std::fmt;

/// One violated invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyIssue {
    /// The instruction at fault, if the problem is in one.
    pub inst: Option<usize>,
    /// The instruction (or signature) as the writer prints it (`Display` quotes a long one
    /// shortened, as `read::quote` does).
    pub line: String,
    pub message: String,
}

/// Every violated invariant of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    pub func: String,
    pub issues: Vec<VerifyIssue>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "@{} fails verification ({n} error{})",
            self.func,
            if n == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            let (line, _) = quote(&issue.line, 1);
            write!(f, "\n  {}\n      {line}", issue.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {}

/// True if `name` can be printed and parsed back as a value name.
pub fn is_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        && name != "return"
}

/// Why `name`, given to value `v`, would not read back as written, if it would not: a name
/// `v<n>` is the printed name of unnamed value n.
fn default_name_clash(f: &Func, v: Value, name: &str) -> Option<String> {
    let n = Value::from_default_name(name)?;
    let unnamed_inst = match f.def(n) {
        Def::Inst(k) => f.insts.get(k).is_some_and(|i| i.name.is_none()),
        Def::Param(_) => false,
    };
    match f.def(v) {
        Def::Param(_) if n != v => Some(format!(
            "parameter '{name}' is value number {}: a parameter may be named v<n> only as value \
             number n (v<n> is how unnamed value n prints)",
            v.0
        )),
        Def::Param(_) => None,
        Def::Inst(_) if n == v => Some(format!(
            "the value is named '{name}', its own printed name when unnamed: leave it unnamed"
        )),
        Def::Inst(_) if unnamed_inst => Some(format!(
            "'{name}' is the printed name of the unnamed value {n}: choose another name"
        )),
        Def::Inst(_) => None,
    }
}

/// Checks every invariant of `f`, returning all violations at once.
pub fn verify(f: &Func) -> Result<(), VerifyError> {
    // Printed names are needed only to report errors: built on the first one.
    let names_cell = std::cell::OnceCell::new();
    let names = || names_cell.get_or_init(|| Names::new(f));
    let mut issues = Vec::new();
    let signature = || format!("func @{}(...)", f.name);
    if !is_identifier(&f.name) {
        issues.push(VerifyIssue {
            inst: None,
            line: signature(),
            message: format!("function name '{}' is not an identifier", f.name),
        });
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, p) in f.params.iter().enumerate() {
        if !is_identifier(&p.name) {
            issues.push(VerifyIssue {
                inst: None,
                line: signature(),
                message: format!("parameter name '{}' is not an identifier", p.name),
            });
        }
        if let Err(e) = p.ty.checked() {
            issues.push(VerifyIssue {
                inst: None,
                line: signature(),
                message: format!("parameter '{}': {e}", p.name),
            });
        }
        if let Some(message) = default_name_clash(f, f.param_value(i), &p.name) {
            issues.push(VerifyIssue {
                inst: None,
                line: signature(),
                message,
            });
        }
        if !seen.insert(&p.name) {
            issues.push(VerifyIssue {
                inst: None,
                line: signature(),
                message: format!("parameter '{}' is declared twice", p.name),
            });
        }
    }
    let mut arg_types = Vec::new();
    for (k, inst) in f.insts.iter().enumerate() {
        let own = f.inst_value(k);
        let mut fail = |message: String| {
            issues.push(VerifyIssue {
                inst: Some(k),
                line: f.render_inst(names(), k),
                message,
            })
        };
        if let Some(n) = &inst.name {
            if !is_identifier(n) {
                fail(format!("value name '{n}' is not an identifier"));
            } else if !seen.insert(n) {
                fail(format!("'{n}' is already defined"));
            } else if let Some(message) = default_name_clash(f, own, n) {
                fail(message);
            }
        }
        if let Err(e) = inst.ty.checked() {
            fail(e.message);
            continue;
        }
        arg_types.clear();
        let mut operands_ok = true;
        for &a in inst.args.iter() {
            if a.index() >= f.num_values() {
                fail(format!("operand {a} is not a value of this function"));
                operands_ok = false;
            } else if a >= own {
                fail(format!(
                    "'{}' is used before its definition",
                    names().get(a)
                ));
                operands_ok = false;
            } else {
                arg_types.push(f.value_type(a));
            }
        }
        if !operands_ok {
            continue;
        }
        if let Op::Const { ty, .. } = &inst.op {
            if *ty != inst.ty {
                fail(format!(
                    "const carries type {ty} but is declared {}",
                    inst.ty
                ));
                continue;
            }
        }
        match crate::ops::result_type(&inst.op, &arg_types) {
            Ok(t) if t == inst.ty => {}
            Ok(t) => fail(format!(
                "declared type {} but {} gives {t}",
                inst.ty,
                inst.op.name()
            )),
            Err(e) => fail(e.message),
        }
    }
    if f.results.is_empty() {
        issues.push(VerifyIssue {
            inst: None,
            line: "return".into(),
            message: "the function returns nothing".into(),
        });
    }
    for &r in &f.results {
        if r.index() >= f.num_values() {
            issues.push(VerifyIssue {
                inst: None,
                line: "return".into(),
                message: format!("returned value {} does not exist", Value(r.0)),
            });
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(VerifyError {
            func: f.name.clone(),
            issues,
        })
    }
}
