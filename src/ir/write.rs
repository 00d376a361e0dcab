//! The text writer: `Display` for `Func`, one instruction a line, every binder typed,
//! attributes sorted by key, floats in the shortest form that parses back to the same bits.

use super::func::{Func, Init, Inst, Role};
use super::op::{Literal, Op};
use super::types::DType;
use super::Value;
use std::collections::HashSet;
use std::fmt::{self, Write};

/// The printed name of every value of a function: its own name, or `v<index>`. In a function
/// that verifies, these read back exactly (the verifier's naming rules); in one that does not,
/// `v<index>` is made unique if an explicit name already took that spelling.
pub struct Names {
    names: Vec<String>,
}

impl Names {
    pub fn new(f: &Func) -> Names {
        let mut taken: HashSet<&str> = HashSet::new();
        for p in &f.params {
            taken.insert(&p.name);
        }
        for i in &f.insts {
            if let Some(n) = &i.name {
                taken.insert(n);
            }
        }
        let mut names = Vec::with_capacity(f.num_values());
        let mut extra: HashSet<String> = HashSet::new();
        for p in &f.params {
            names.push(p.name.clone());
        }
        for (k, inst) in f.insts.iter().enumerate() {
            match &inst.name {
                Some(n) => names.push(n.to_string()),
                None => {
                    let base = format!("v{}", f.params.len() + k);
                    let mut name = base.clone();
                    let mut n = 1;
                    while taken.contains(name.as_str()) || extra.contains(&name) {
                        name = format!("{base}_{n}");
                        n += 1;
                    }
                    if name != base {
                        extra.insert(name.clone());
                    }
                    names.push(name);
                }
            }
        }
        Names { names }
    }

    /// The printed name of `v`, or `?v<index>` for a value outside the function.
    pub fn get(&self, v: Value) -> String {
        match self.names.get(v.index()) {
            Some(n) => n.clone(),
            None => format!("?{v}"),
        }
    }
}

/// Writes a float so that the reader gives back the same bits: NaNs as `nan` or `-nan` by sign
/// (the Builder keeps no other NaN payload in a constant).
pub(crate) fn write_float(out: &mut impl Write, x: f64) -> fmt::Result {
    if x.is_nan() {
        out.write_str(if x.is_sign_negative() { "-nan" } else { "nan" })
    } else {
        write!(out, "{x:?}")
    }
}

fn write_scalar(out: &mut impl Write, dtype: DType, x: f64) -> fmt::Result {
    match dtype {
        DType::F64 => write_float(out, x),
        DType::Bool => out.write_str(if x != 0.0 { "true" } else { "false" }),
    }
}

fn write_init(out: &mut impl Write, init: Init) -> fmt::Result {
    match init {
        Init::Uniform(lo, hi) => {
            out.write_str("uniform(")?;
            write_float(out, lo)?;
            out.write_str(", ")?;
            write_float(out, hi)?;
            out.write_str(")")
        }
        Init::Normal(mean, std) => {
            out.write_str("normal(")?;
            write_float(out, mean)?;
            out.write_str(", ")?;
            write_float(out, std)?;
            out.write_str(")")
        }
        Init::Sign => out.write_str("sign"),
        Init::OneHot => out.write_str("onehot"),
    }
}

/// Writes one instruction as its line of text, without indentation or newline.
pub(crate) fn write_inst(
    out: &mut impl Write,
    names: &Names,
    value: Value,
    inst: &Inst,
) -> fmt::Result {
    write!(
        out,
        "{}: {} = {}",
        names.get(value),
        inst.ty,
        inst.op.name()
    )?;
    if let Op::Const { ty, value } = &inst.op {
        out.write_str(" ")?;
        match value {
            Literal::Splat(x) => write_scalar(out, ty.dtype, *x)?,
            Literal::Elements(xs) => {
                out.write_str("[")?;
                for (i, &x) in xs.iter().enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    write_scalar(out, ty.dtype, x)?;
                }
                out.write_str("]")?;
            }
        }
    }
    for (i, &a) in inst.args.iter().enumerate() {
        out.write_str(if i == 0 { " " } else { ", " })?;
        out.write_str(&names.get(a))?;
    }
    // Spellings from the op table; printed sorted by name.
    let mut attrs = inst.op.attributes();
    attrs.sort_unstable_by_key(|(k, _)| *k);
    if !attrs.is_empty() {
        out.write_str(" [")?;
        for (i, (k, v)) in attrs.iter().enumerate() {
            if i > 0 {
                out.write_str(", ")?;
            }
            write!(out, "{k}={v}")?;
        }
        out.write_str("]")?;
    }
    Ok(())
}

impl Func {
    /// The text line of instruction `inst` (as the writer prints it, without indentation).
    pub fn render_inst(&self, names: &Names, inst: usize) -> String {
        let mut s = String::new();
        let _ = write_inst(&mut s, names, self.inst_value(inst), &self.insts[inst]);
        s
    }

    /// Writes the function with a precomputed name table.
    pub fn write_with(&self, out: &mut impl Write, names: &Names) -> fmt::Result {
        write!(out, "func @{}(", self.name)?;
        for (i, p) in self.params.iter().enumerate() {
            if i > 0 {
                out.write_str(", ")?;
            }
            if p.role == Role::Data {
                out.write_str("data ")?;
            }
            write!(out, "{}: {}", p.name, p.ty)?;
            if let Some(init) = p.init {
                out.write_str(" ~ ")?;
                write_init(out, init)?;
            }
        }
        out.write_str(") -> (")?;
        for (i, &r) in self.results.iter().enumerate() {
            if i > 0 {
                out.write_str(", ")?;
            }
            match self.try_value_type(r) {
                Some(t) => write!(out, "{t}")?,
                None => out.write_str("?")?,
            }
        }
        out.write_str(") {\n")?;
        for (k, inst) in self.insts.iter().enumerate() {
            out.write_str("    ")?;
            write_inst(out, names, self.inst_value(k), inst)?;
            out.write_str("\n")?;
        }
        out.write_str("    return")?;
        for (i, &r) in self.results.iter().enumerate() {
            out.write_str(if i == 0 { " " } else { ", " })?;
            out.write_str(&names.get(r))?;
        }
        out.write_str("\n}\n")
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = Names::new(self);
        self.write_with(f, &names)
    }
}
