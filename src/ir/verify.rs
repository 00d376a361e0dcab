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
//! 6. Every function a `scan` calls verifies (its types against the scan's operands are the
//!    shape rule's, invariant 3).
//!
//! Errors carry the instruction's index and its rendered line, so callers can point at the text.

use super::func::{Def, Func, Inst};
use super::op::Op;
use super::read::quote;
use super::scan::Body;
use super::types::Type;
use super::write::Names;
use super::Value;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

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

/// Checks every invariant of `f`, returning all violations at once; a function its scans call
/// that fails is reported at the scan of `f` through which it is first reached.
pub fn verify(f: &Func) -> Result<(), VerifyError> {
    let mut issues = own_problems(f);
    issues.extend(body_problems(f));
    if issues.is_empty() {
        Ok(())
    } else {
        Err(VerifyError {
            func: f.name.clone(),
            issues,
        })
    }
}

/// The violations in `f` itself, not in the functions its scans call.
fn own_problems(f: &Func) -> Vec<VerifyIssue> {
    // Printed names are needed only to report errors: built on the first one.
    let names = OnceCell::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let signature = format!("func @{}(...)", f.name);
    let mut issues: Vec<VerifyIssue> = signature_problems(f, &mut seen)
        .into_iter()
        .map(|message| VerifyIssue {
            inst: None,
            line: signature.clone(),
            message,
        })
        .collect();
    let mut arg_types = Vec::new();
    for k in 0..f.insts.len() {
        for message in inst_problems(f, k, &names, &mut seen, &mut arg_types) {
            let names = names.get_or_init(|| Names::new(f));
            issues.push(VerifyIssue {
                inst: Some(k),
                line: f.render_inst(names, k),
                message,
            });
        }
    }
    issues.extend(result_problems(f).into_iter().map(|message| VerifyIssue {
        inst: None,
        line: "return".into(),
        message,
    }));
    issues
}

/// Invariants 1 and 5 on the function's name and parameters; records their names in `seen`.
fn signature_problems<'f>(f: &'f Func, seen: &mut HashSet<&'f str>) -> Vec<String> {
    let mut problems = Vec::new();
    if !is_identifier(&f.name) {
        problems.push(format!("function name '{}' is not an identifier", f.name));
    }
    for (i, p) in f.params.iter().enumerate() {
        if !is_identifier(&p.name) {
            problems.push(format!("parameter name '{}' is not an identifier", p.name));
        }
        if let Err(e) = p.ty.checked() {
            problems.push(format!("parameter '{}': {e}", p.name));
        }
        problems.extend(default_name_clash(f, f.param_value(i), &p.name));
        if !seen.insert(&p.name) {
            problems.push(format!("parameter '{}' is declared twice", p.name));
        }
    }
    problems
}

/// Invariant 1 on an instruction's name, if it has one; records it in `seen`.
fn name_problem<'f>(f: &'f Func, k: usize, seen: &mut HashSet<&'f str>) -> Option<String> {
    let n = f.insts[k].name.as_deref()?;
    if !is_identifier(n) {
        Some(format!("value name '{n}' is not an identifier"))
    } else if !seen.insert(n) {
        Some(format!("'{n}' is already defined"))
    } else {
        default_name_clash(f, f.inst_value(k), n)
    }
}

/// Invariants 1, 2, 3 and 5 on instruction `k`. `arg_types` is scratch space.
fn inst_problems<'f>(
    f: &'f Func,
    k: usize,
    names: &OnceCell<Names>,
    seen: &mut HashSet<&'f str>,
    arg_types: &mut Vec<Type>,
) -> Vec<String> {
    let inst = &f.insts[k];
    let mut problems: Vec<String> = name_problem(f, k, seen).into_iter().collect();
    if let Err(e) = inst.ty.checked() {
        problems.push(e.message);
        return problems;
    }
    let own = f.inst_value(k);
    arg_types.clear();
    for &a in inst.args.iter() {
        if a.index() >= f.num_values() {
            problems.push(format!("operand {a} is not a value of this function"));
        } else if a >= own {
            let names = names.get_or_init(|| Names::new(f));
            problems.push(format!("'{}' is used before its definition", names.get(a)));
        } else {
            arg_types.push(f.value_type(a));
        }
    }
    if arg_types.len() < inst.args.len() {
        return problems;
    }
    problems.extend(type_problem(inst, arg_types));
    problems
}

/// Invariant 3: the declared type is the op's result type on these operand types.
fn type_problem(inst: &Inst, arg_types: &[Type]) -> Option<String> {
    if let Op::Const { ty, .. } = &inst.op {
        if *ty != inst.ty {
            return Some(format!(
                "const carries type {ty} but is declared {}",
                inst.ty
            ));
        }
    }
    // The shape rule reads the types of what a scan's functions return: they must exist.
    if let Op::Scan { body, replay, .. } = &inst.op {
        for g in std::iter::once(body).chain(replay) {
            let g = g.func();
            if g.results.iter().any(|r| r.index() >= g.num_values()) {
                return Some(format!("@{} returns a value it does not have", g.name));
            }
        }
    }
    match crate::ops::result_type(&inst.op, arg_types) {
        Ok(t) if t == inst.ty => None,
        Ok(t) => Some(format!(
            "declared type {} but {} gives {t}",
            inst.ty,
            inst.op.name()
        )),
        Err(e) => Some(e.message),
    }
}

/// The functions the scans of `f` call, each scan's body then its replay.
fn callees(f: &Func) -> Vec<(usize, &Body)> {
    let mut out = Vec::new();
    for (k, inst) in f.insts.iter().enumerate() {
        if let Op::Scan { body, replay, .. } = &inst.op {
            out.push((k, body));
            out.extend(replay.iter().map(|r| (k, r)));
        }
    }
    out
}

/// Invariant 6: every function the scans reach verifies. Each is checked once, however many
/// scans call it, by a walk with an explicit stack: a file can share functions in ways whose
/// unshared expansion is exponential, and nesting is deep in Builder-made functions.
fn body_problems(f: &Func) -> Vec<VerifyIssue> {
    let mut seen: HashSet<*const Func> = HashSet::new();
    let mut issues = Vec::new();
    for (k, body) in callees(f) {
        let mut stack: Vec<&Body> = vec![body];
        while let Some(g) = stack.pop() {
            if !seen.insert(Arc::as_ptr(&g.0)) {
                continue;
            }
            let g = g.func();
            let own = own_problems(g);
            if !own.is_empty() {
                let e = VerifyError {
                    func: g.name.clone(),
                    issues: own,
                };
                issues.push(VerifyIssue {
                    inst: Some(k),
                    line: f.render_inst(&Names::new(f), k),
                    message: format!("the scan's function: {e}"),
                });
            }
            stack.extend(callees(g).into_iter().map(|(_, b)| b));
        }
    }
    issues
}

/// Invariant 4.
fn result_problems(f: &Func) -> Vec<String> {
    let mut problems = Vec::new();
    if f.results.is_empty() {
        problems.push("the function returns nothing".to_string());
    }
    for &r in &f.results {
        if r.index() >= f.num_values() {
            problems.push(format!("returned value {} does not exist", Value(r.0)));
        }
    }
    problems
}
