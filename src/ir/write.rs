//! The text writer: `Display` for `Func`, one instruction a line, every binder typed,
//! attributes sorted by key, floats in the shortest form that parses back to the same bits.
//!
//! A function with scans prints as several: every function its scans reach (bodies and
//! replays, through any depth), dependencies first, then the function itself, separated by
//! blank lines. Each function prints once: bodies equal by content (`Body::eq`) are one
//! function, whether or not they share their `Arc`. Function names (`FuncNames`):
//! - the printed function keeps its name, and so does every function whose name no earlier
//!   printed function took;
//! - a later, different function of a name already printed is printed as `NAME.k`, the
//!   smallest `k >= 1` that is neither printed yet nor the name of any function printed at all,
//!   in its header and in every `body=`/`replay=` that names it.
//!
//! So text reads back to an equal function whenever distinct functions have distinct names
//! (always, for text the reader read, which refuses a name defined twice); otherwise it reads
//! back with the renamed bodies, which then all have distinct names, so that it prints again
//! as the very same text.

use super::func::{Func, Init, Inst, Role};
use super::op::{Attr, Literal, Op};
use super::scan::Body;
use super::types::DType;
use super::Value;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write};
use std::sync::Arc;

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

/// The functions a function's scans reach, in printing order (dependencies first, each once),
/// and the name each prints under (see the module doc).
pub(crate) struct FuncNames {
    /// Distinct functions, dependencies first; the function itself is not among them.
    order: Vec<Body>,
    /// The printed name of every function reached, by address (bodies equal by content share
    /// one name).
    names: HashMap<*const Func, String>,
}

impl FuncNames {
    /// No function: attributes print functions under their own names.
    pub(crate) fn none() -> FuncNames {
        FuncNames {
            order: Vec::new(),
            names: HashMap::new(),
        }
    }

    /// The functions `f` reaches and their printed names. No recursion: an explicit stack walks
    /// the scans, and functions equal by content are recognised by their text, whose calls name
    /// functions already numbered (dependencies come first).
    pub(crate) fn new(f: &Func) -> FuncNames {
        let (order, index) = reached(f);
        // Every name that prints as itself somewhere: a suffixed name must avoid them all.
        let own: HashSet<&str> = order.iter().map(|b| b.func().name.as_str()).collect();
        let mut used: HashSet<String> = HashSet::from([f.name.clone()]);
        let mut printed = Vec::with_capacity(order.len());
        for b in &order {
            let base = &b.func().name;
            let mut name = base.clone();
            let mut k = 0usize;
            while used.contains(&name) || (k > 0 && own.contains(name.as_str())) {
                k += 1;
                name = format!("{base}.{k}");
            }
            used.insert(name.clone());
            printed.push(name);
        }
        let names = index
            .into_iter()
            .map(|(p, i)| (p, printed[i].clone()))
            .collect();
        FuncNames { order, names }
    }

    /// The name `g` prints under: its own, unless it was renamed.
    pub(crate) fn get<'a>(&'a self, g: &'a Func) -> &'a str {
        self.names
            .get(&(g as *const Func))
            .map_or(g.name.as_str(), String::as_str)
    }
}

/// The functions `f`'s scans reach, dependencies first, one per content, and the index in that
/// list of every function reached, by address.
fn reached(f: &Func) -> (Vec<Body>, HashMap<*const Func, usize>) {
    let mut order: Vec<Body> = Vec::new();
    let mut index: HashMap<*const Func, usize> = HashMap::new();
    // The text of each function of `order`, its calls numbered: equal text, equal function.
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut numbered = FuncNames::none();
    // Each frame: a function being walked (`None` for `f`), its callees, the next to visit.
    let mut stack: Vec<(Option<Body>, Vec<Body>, usize)> = vec![(None, callees(f), 0)];
    while let Some((body, calls, next)) = stack.last_mut() {
        if let Some(g) = calls.get(*next) {
            *next += 1;
            if !index.contains_key(&Arc::as_ptr(&g.0)) {
                let frame = (Some(g.clone()), callees(g.func()), 0);
                stack.push(frame);
            }
            continue;
        }
        let done = body.take();
        stack.pop();
        let Some(g) = done else { break };
        let mut text = String::new();
        let _ = g
            .func()
            .write_one(&mut text, &Names::new(g.func()), &g.func().name, &numbered);
        let i = *by_text.entry(text).or_insert_with(|| {
            order.push(g.clone());
            order.len() - 1
        });
        index.insert(Arc::as_ptr(&g.0), i);
        numbered.names.insert(Arc::as_ptr(&g.0), format!("#{i}"));
    }
    (order, index)
}

/// The functions the scans of `f` call, in order: each scan's body, then its replay.
fn callees(f: &Func) -> Vec<Body> {
    let mut out = Vec::new();
    for inst in &f.insts {
        if let Op::Scan { body, replay, .. } = &inst.op {
            out.push(body.clone());
            out.extend(replay.iter().cloned());
        }
    }
    out
}

/// Writes one instruction as its line of text, without indentation or newline; functions are
/// named by their own names.
pub(crate) fn write_inst(
    out: &mut impl Write,
    names: &Names,
    value: Value,
    inst: &Inst,
) -> fmt::Result {
    write_inst_with(out, names, &FuncNames::none(), value, inst)
}

/// Writes one instruction, naming the functions its attributes call as `funcs` says.
fn write_inst_with(
    out: &mut impl Write,
    names: &Names,
    funcs: &FuncNames,
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
            match v {
                Attr::Func(b) => write!(out, "{k}=@{}", funcs.get(b.func()))?,
                Attr::List(_) | Attr::Int(_) | Attr::Flag(_) | Attr::Policy(_) => {
                    write!(out, "{k}={v}")?
                }
            }
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

    /// Writes this function alone (not the functions its scans call), with a precomputed name
    /// table.
    pub fn write_with(&self, out: &mut impl Write, names: &Names) -> fmt::Result {
        self.write_one(out, names, &self.name, &FuncNames::none())
    }

    /// Writes this function alone, under the name `name`, naming its scans' functions as
    /// `funcs` says.
    fn write_one(
        &self,
        out: &mut impl Write,
        names: &Names,
        name: &str,
        funcs: &FuncNames,
    ) -> fmt::Result {
        write!(out, "func @{name}(")?;
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
            write_inst_with(out, names, funcs, self.inst_value(k), inst)?;
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

/// The function and every function its scans reach, dependencies first (module doc).
impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let funcs = FuncNames::new(self);
        for b in &funcs.order {
            let g = b.func();
            g.write_one(f, &Names::new(g), funcs.get(g), &funcs)?;
            f.write_str("\n")?;
        }
        self.write_one(f, &Names::new(self), &self.name, &funcs)
    }
}
