//! The text reader: parses `.ir` text, one or more functions, into the entry function.
//!
//! Grammar (comments run from `;` to the end of the line; whitespace is free):
//!
//! ```text
//! file    := func {func}
//! func    := 'func' '@' NAME '(' [param {',' param}] ')' '->' '(' [type {',' type}] ')'
//!            '{' {inst} 'return' NAME {',' NAME} '}'
//! param   := ['data'] NAME ':' type ['~' init]
//! init    := 'uniform' '(' NUM ',' NUM ')' | 'normal' '(' NUM ',' NUM ')' | 'sign' | 'onehot'
//! type    := ('f64' | 'bool') '[' [INT {',' INT}] ']'
//! inst    := NAME ':' type '=' 'const' literal
//!          | NAME ':' type '=' OP [NAME {',' NAME}] ['[' attr {',' attr} ']']
//! literal := scalar | '[' scalar {',' scalar} ']'        scalar := NUM | inf | nan | true | false
//! attr    := KEY '=' (INT | 'true' | 'false' | '[' [INT {',' INT}] ']' | '@' NAME | policy)
//! policy  := 'all' | 'carry' | 'auto' | 'binomial' '(' INT ')'
//! ```
//!
//! Operands may be left out only by an op that takes none (a `scan` of no operands).
//!
//! Functions: an attribute `@NAME` (a scan's `body` or `replay`) names another function of the
//! file, defined before or after. Names are unique; no function calls itself, directly or
//! through others; functions nest at most `MAX_NESTING` deep. The entry, which `parse` returns,
//! is the one function no other calls (another unreferenced function is an error: which one was
//! meant?); the others are inside its scans, each built once and shared by every call. The
//! writer prints functions in this form (`crate::ir::write`).
//!
//! Types: a rank of at most `MAX_RANK`, dimensions up to `u32::MAX`, at most `MAX_ELEMENTS`
//! elements (`Type::try_new`, whose message the Builder gives for the same shapes).
//!
//! Names: values are numbered from 0, parameters first, then instructions. An instruction written
//! `v<n>` with n its own number (exactly that spelling: not `v07`) is unnamed, which is how the
//! writer prints unnamed values; every other name is kept. The verifier then asks that a name
//! `v<n>` mean value n: a parameter named so must be value n, and an instruction may be named
//! `v<k>` of another number k only if value k is not an unnamed instruction. With these rules
//! every function that verifies (everything the Builder finishes) prints as text that reads
//! back to an equal function.
//!
//! The reader builds the function as written: it resolves names, but checks types only where it
//! must to build the data (the verifier does the rest). Every error carries `line:column` and the
//! offending line; no input, however malformed, makes it panic, and nothing recurses: calls
//! between functions are resolved by loops (`Parser::link`).

use super::func::{Func, Init, Inst, Param, Role, Value};
use super::op::{Attr, AttrError, Literal, Op, Opcode};
use super::scan::{Body, Checkpoint};
use super::types::{DType, Type};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

mod lex;
mod link;

use lex::Tok;

/// A parse error: where, what, and the line it is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    pub message: String,
    /// The offending line; of a long line, a window around the column (`quote`).
    pub source_line: String,
    /// Where the caret goes under `source_line`: 0-based, in characters.
    pub caret: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}: {}", self.line, self.col, self.message)?;
        writeln!(f, "    {}", self.source_line)?;
        write!(f, "    {}^", " ".repeat(self.caret))
    }
}

/// The most characters of a line an error quotes.
pub const QUOTE_WIDTH: usize = 100;

/// A window of at most `QUOTE_WIDTH` characters of `line` around the 1-based column `col`, with
/// `…` where the line was cut, and the 0-based position of `col` in it (where a caret goes).
/// Errors quote lines through this, so a line of megabytes makes a message of one line.
pub fn quote(line: &str, col: usize) -> (String, usize) {
    let at = col.saturating_sub(1);
    let n = line.chars().count();
    if n <= QUOTE_WIDTH {
        return (line.to_string(), at);
    }
    let start = at.saturating_sub(QUOTE_WIDTH / 2).min(n - QUOTE_WIDTH);
    let mut window = String::with_capacity(QUOTE_WIDTH + 8);
    if start > 0 {
        window.push('…');
    }
    window.extend(line.chars().skip(start).take(QUOTE_WIDTH));
    if start + QUOTE_WIDTH < n {
        window.push('…');
    }
    (window, at - start + usize::from(start > 0))
}

impl std::error::Error for ParseError {}

fn error_at(text: &str, offset: usize, message: impl Into<String>) -> ParseError {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |p| line_start + p);
    // The offset may sit inside a multi-byte character only if a caller passed one; be safe.
    let head = text.get(line_start..offset).unwrap_or("");
    let col = head.chars().count() + 1;
    let (source_line, caret) = quote(text[line_start..line_end].trim_end_matches('\r'), col);
    ParseError {
        line,
        col,
        message: clip(message.into()),
        source_line,
        caret,
    }
}

/// The most characters of a message: more come only from quoting huge tokens.
const MESSAGE_WIDTH: usize = 200;

/// `message`, or of a longer one its head and tail around `…`, so that a megabyte name or
/// number quoted in a message does not make a megabyte message.
fn clip(message: String) -> String {
    let n = message.chars().count();
    if n <= MESSAGE_WIDTH {
        return message;
    }
    let half = MESSAGE_WIDTH / 2;
    let head: String = message.chars().take(half).collect();
    let tail: String = message.chars().skip(n - half).collect();
    format!("{head} … {tail}")
}

/// The most functions a chain of calls may hold, the entry included: the verifier and the
/// executors walk bodies by recursion, so the reader refuses deeper text before building it.
pub const MAX_NESTING: usize = 64;

/// Parses a file: its entry function, with the other functions inside its scans.
pub fn parse(text: &str) -> Result<Func, ParseError> {
    parse_with_lines(text).map(|(f, _)| f)
}

/// Parses bytes, reporting invalid UTF-8 with its position.
pub fn parse_bytes(bytes: &[u8]) -> Result<(Func, Vec<u32>), ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_with_lines(text),
        Err(e) => {
            let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
            Err(error_at(good, good.len(), "the file is not valid UTF-8"))
        }
    }
}

/// Parses a file, also returning the 1-based source line of each instruction of the entry
/// function.
pub fn parse_with_lines(text: &str) -> Result<(Func, Vec<u32>), ParseError> {
    // A byte-order mark, as some editors write, is not part of the text.
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut p = Parser {
        text,
        pos: start,
        line: 1,
    };
    p.file()
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
}

type PResult<T> = Result<T, ParseError>;

/// A function as read. Its scans call placeholders (functions of the right name and nothing
/// else) until `Parser::link` has built the functions they call.
struct Read<'a> {
    func: Func,
    name: &'a str,
    /// Offset of `@name` in the header.
    at: usize,
    lines: Vec<u32>,
    calls: Vec<Call<'a>>,
}

/// An instruction whose attributes name functions, to be made again with the functions built.
struct Call<'a> {
    inst: usize,
    code: Opcode,
    op_at: usize,
    attrs: Attrs<'a>,
    refs: Vec<Ref<'a>>,
}

/// `@name` as an attribute's value: the attribute's index in its list, the name, its offset.
#[derive(Clone, Copy)]
struct Ref<'a> {
    attr: usize,
    name: &'a str,
    at: usize,
}

/// Attributes as read: name, offset of the name, value.
type Attrs<'a> = Vec<(&'a str, usize, Attr)>;

/// Declared result types, each with its offset.
type ResultTypes = Vec<(Type, usize)>;

/// Each function's calls: (callee's index, offset of the `@name`), in the order written.
type Edges = Vec<Vec<(usize, usize)>>;

/// An operand not yet defined where it was used: resolved at the end.
struct Pending<'a> {
    inst: usize,
    arg: usize,
    name: &'a str,
    offset: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, offset: usize, message: impl Into<String>) -> PResult<T> {
        Err(error_at(self.text, offset, message))
    }

    /// `f64[2,3]`: the limits on shapes are those of `Type::try_new`, with its message.
    fn ty(&mut self) -> PResult<Type> {
        let (name, at) = self.expect_ident("a type such as f64[3]")?;
        let Some(dtype) = DType::from_name(name) else {
            return self.err(
                at,
                format!("unknown element type '{name}' (expected f64 or bool)"),
            );
        };
        let (dims, _) = self.items("dimension", |p| Ok(p.wide_integer("dimension")?.0))?;
        let dims: Vec<usize> = dims
            .into_iter()
            .map(|d| usize::try_from(d).unwrap_or(usize::MAX))
            .collect();
        Type::try_new(dtype, &dims).or_else(|e| self.err(at, e.message))
    }

    /// A float: a number, or `inf`/`nan` with an optional leading '-'.
    fn float(&mut self) -> PResult<f64> {
        let (t, at) = self.next()?;
        let (neg, t, at) = match t {
            Tok::Punct(b'-') => {
                let (t2, at2) = self.next()?;
                (true, t2, at2)
            }
            _ => (false, t, at),
        };
        let x = match t {
            Tok::Number(s) => match s.parse::<f64>() {
                Ok(x) if x.is_finite() => x,
                Ok(_) => {
                    return self.err(
                        at,
                        format!("number '{s}' is out of range for f64 (write inf for infinity)"),
                    )
                }
                Err(_) => return self.err(at, format!("bad number '{s}'")),
            },
            Tok::Ident("inf") => f64::INFINITY,
            Tok::Ident("nan") | Tok::Ident("NaN") => f64::NAN,
            t => return self.err(at, format!("expected a number, found {t}")),
        };
        Ok(if neg { -x } else { x })
    }

    fn scalar(&mut self, dtype: DType) -> PResult<f64> {
        if let (Tok::Ident(s @ ("true" | "false")), at) = self.peek()? {
            self.next()?;
            if dtype != DType::Bool {
                return self.err(
                    at,
                    format!(
                        "'{s}' is a bool literal, but the constant is {}",
                        dtype.name()
                    ),
                );
            }
            return Ok(if s == "true" { 1.0 } else { 0.0 });
        }
        let (_, at) = self.peek()?;
        let x = self.float()?;
        if dtype == DType::Bool {
            return self.err(at, "a bool constant takes true or false");
        }
        Ok(x)
    }

    fn literal(&mut self, ty: Type) -> PResult<Literal> {
        if !self.eat_punct(b'[')? {
            return Ok(Literal::Splat(self.scalar(ty.dtype)?));
        }
        let mut xs = Vec::new();
        if !self.eat_punct(b']')? {
            loop {
                xs.push(self.scalar(ty.dtype)?);
                if !self.comma_or(b']', "in the literal")? {
                    break;
                }
            }
        }
        Ok(Literal::Elements(Arc::from(xs)))
    }

    fn init(&mut self) -> PResult<Init> {
        let (name, at) = self.expect_ident("a distribution (uniform, normal, sign, onehot)")?;
        let two = |p: &mut Self| -> PResult<(f64, f64)> {
            p.expect_punct(b'(', "after the distribution's name")?;
            let a = p.float()?;
            p.expect_punct(b',', "between the two parameters")?;
            let b = p.float()?;
            p.expect_punct(b')', "after the parameters")?;
            Ok((a, b))
        };
        match name {
            "uniform" => {
                let (lo, hi) = two(self)?;
                if lo >= hi || !lo.is_finite() || !hi.is_finite() {
                    return self.err(at, "uniform(lo, hi) needs finite lo < hi");
                }
                Ok(Init::Uniform(lo, hi))
            }
            "normal" => {
                let (mean, std) = two(self)?;
                if std < 0.0 || !mean.is_finite() || !std.is_finite() {
                    return self.err(at, "normal(mean, std) needs a finite mean and std >= 0");
                }
                Ok(Init::Normal(mean, std))
            }
            "sign" => Ok(Init::Sign),
            "onehot" => Ok(Init::OneHot),
            _ => self.err(
                at,
                format!("unknown distribution '{name}' (expected uniform, normal, sign or onehot)"),
            ),
        }
    }

    fn params(&mut self, names: &mut HashMap<&'a str, Value>) -> PResult<Vec<Param>> {
        self.expect_punct(b'(', "to open the parameter list")?;
        let mut params = Vec::new();
        if self.eat_punct(b')')? {
            return Ok(params);
        }
        loop {
            let (mut name, mut at) = self.expect_ident("a parameter name")?;
            let mut role = Role::Wrt;
            if name == "data" {
                if let (Tok::Ident(_), _) = self.peek()? {
                    role = Role::Data;
                    (name, at) = self.expect_ident("a parameter name")?;
                }
            }
            if names.insert(name, Value(params.len() as u32)).is_some() {
                return self.err(at, format!("parameter '{name}' is declared twice"));
            }
            self.expect_punct(b':', "after the parameter name")?;
            let ty = self.ty()?;
            let init = if self.eat_punct(b'~')? {
                Some(self.init()?)
            } else {
                None
            };
            params.push(Param {
                name: name.to_string(),
                ty,
                role,
                init,
            });
            if !self.comma_or(b')', "after a parameter")? {
                break;
            }
        }
        Ok(params)
    }

    /// The attributes, and the functions they name (whose values are placeholders).
    fn attrs(&mut self) -> PResult<(Attrs<'a>, Vec<Ref<'a>>)> {
        let mut attrs: Attrs<'a> = Vec::new();
        let mut refs = Vec::new();
        if !self.eat_punct(b'[')? {
            return Ok((attrs, refs));
        }
        loop {
            let (key, at) = self.expect_ident("an attribute name")?;
            if attrs.iter().any(|(k, _, _)| *k == key) {
                return self.err(at, format!("attribute '{key}' is given twice"));
            }
            self.expect_punct(b'=', "after the attribute name")?;
            let value = match self.peek()? {
                (Tok::Punct(b'['), _) => Attr::List(self.int_list(key)?),
                (Tok::Ident("true"), _) => {
                    self.next()?;
                    Attr::Flag(true)
                }
                (Tok::Ident("false"), _) => {
                    self.next()?;
                    Attr::Flag(false)
                }
                (Tok::Global(name), at) => {
                    self.next()?;
                    let attr = attrs.len();
                    refs.push(Ref { attr, name, at });
                    Attr::Func(Body::new(Func::new(name)))
                }
                (Tok::Ident(word), at) if is_policy(word) => Attr::Policy(self.policy(word, at)?),
                _ => Attr::Int(self.integer(key)? as u32),
            };
            attrs.push((key, at, value));
            if !self.comma_or(b']', "in the attributes")? {
                break;
            }
        }
        Ok((attrs, refs))
    }

    /// A checkpointing policy, `word` at `at` being its first word (`is_policy`).
    fn policy(&mut self, word: &str, at: usize) -> PResult<Checkpoint> {
        self.next()?;
        let spelled = if word == "binomial" {
            self.expect_punct(b'(', "after binomial")?;
            let (_, n_at) = self.peek()?;
            let n = self.integer("the number of stored carries")?;
            self.expect_punct(b')', "after the number of stored carries")?;
            if n == 0 {
                return self.err(n_at, "binomial(s) stores s >= 1 carries, not 0");
            }
            format!("binomial({n})")
        } else {
            word.to_string()
        };
        match Checkpoint::parse(&spelled) {
            Some(p) => Ok(p),
            None => self.err(at, format!("unknown checkpointing policy '{spelled}'")),
        }
    }

    /// Builds the op for `code` from its attributes, checking names and kinds (not values);
    /// the spellings come from the op table.
    fn make_op(&self, code: Opcode, op_at: usize, attrs: &[(&'a str, usize, Attr)]) -> PResult<Op> {
        let wanted = code.attribute_names();
        for (k, at, _) in attrs {
            if !wanted.contains(k) {
                let expected = if wanted.is_empty() {
                    "it takes none".to_string()
                } else {
                    let mut sorted = wanted.to_vec();
                    sorted.sort_unstable();
                    format!("it takes {}", sorted.join(", "))
                };
                return self.err(
                    *at,
                    format!("{} has no attribute '{k}' ({expected})", code.name()),
                );
            }
        }
        let find = |k: &str| attrs.iter().find(|(key, _, _)| *key == k);
        match Op::from_attributes(code, |k| find(k).map(|(_, _, a)| a)) {
            Ok(Some(op)) => Ok(op),
            Ok(None) => self.err(op_at, "const takes a literal, not attributes"),
            Err(AttrError::Missing(k)) => {
                self.err(op_at, format!("{} needs the attribute '{k}'", code.name()))
            }
            Err(AttrError::WrongKind(k, takes)) => {
                let at = find(k).map_or(op_at, |(_, at, _)| *at);
                self.err(at, format!("attribute '{k}' takes {takes}"))
            }
        }
    }

    /// The functions of the file, then the entry, built (`link`).
    fn file(&mut self) -> PResult<(Func, Vec<u32>)> {
        let mut funcs: Vec<Read<'a>> = Vec::new();
        let mut by_name: HashMap<&'a str, usize> = HashMap::new();
        loop {
            let f = self.function(&funcs, &by_name)?;
            by_name.insert(f.name, funcs.len());
            funcs.push(f);
            match self.peek()? {
                (Tok::Eof, _) => break,
                (Tok::Ident("func"), _) => {}
                (t, at) => {
                    return self.err(
                        at,
                        format!(
                            "expected end of file or another 'func' after the function, found {t}"
                        ),
                    )
                }
            }
        }
        self.link(funcs, &by_name)
    }

    /// A whole function: header, instructions, `return`; its name must be new (`funcs`,
    /// `by_name`: the functions before it).
    fn function(
        &mut self,
        funcs: &[Read<'a>],
        by_name: &HashMap<&'a str, usize>,
    ) -> PResult<Read<'a>> {
        let mut names: HashMap<&'a str, Value> = HashMap::new();
        let (mut func, name, name_at, result_types) = self.header(&mut names)?;
        if let Some(&first) = by_name.get(name) {
            let line = error_at(self.text, funcs[first].at, "").line;
            return self.err(
                name_at,
                format!("function @{name} is defined twice (first on line {line})"),
            );
        }
        self.expect_punct(b'{', "to open the function body")?;
        let mut lines = Vec::new();
        let mut calls = Vec::new();
        let mut pending: Vec<Pending<'a>> = Vec::new();
        while let Some((name, at)) = self.instruction_name()? {
            lines.push(self.line);
            let inst = func.insts.len();
            if let Some(call) = self.instruction(&mut func, &mut names, &mut pending, name, at)? {
                calls.push(Call { inst, ..call });
            }
        }
        // Every name is defined by now: operands that named a later value are kept as written
        // (the verifier reports the use before definition); an undefined one is the first error.
        for p in pending {
            let Some(&v) = names.get(p.name) else {
                return self.err(p.offset, format!("undefined value '{}'", p.name));
            };
            let mut args = func.insts[p.inst].args.to_vec();
            args[p.arg] = v;
            func.insts[p.inst].args = args.into_boxed_slice();
        }
        self.returns(&mut func, &names, &result_types)?;
        self.expect_punct(b'}', "to close the function body")?;
        Ok(Read {
            func,
            name,
            at: name_at,
            lines,
            calls,
        })
    }

    /// `func @name(params) -> (types)`: the function with its parameters, its name and the
    /// name's offset, and the declared result types with their positions.
    fn header(
        &mut self,
        names: &mut HashMap<&'a str, Value>,
    ) -> PResult<(Func, &'a str, usize, ResultTypes)> {
        match self.next()? {
            (Tok::Ident("func"), _) => {}
            (Tok::Eof, at) => return self.err(at, "empty file: expected 'func @name(...)'"),
            (t, at) => return self.err(at, format!("expected 'func', found {t}")),
        }
        let (name, name_at) = match self.next()? {
            (Tok::Global(n), at) => (n, at),
            (t, at) => {
                return self.err(at, format!("expected the function name '@name', found {t}"))
            }
        };
        let mut func = Func::new(name);
        func.params = self.params(names)?;
        match self.next()? {
            (Tok::Arrow, _) => {}
            (t, at) => {
                return self.err(
                    at,
                    format!("expected '->' before the result types, found {t}"),
                )
            }
        }
        self.expect_punct(b'(', "to open the result types")?;
        let mut result_types = Vec::new();
        if !self.eat_punct(b')')? {
            loop {
                let (_, at) = self.peek()?;
                result_types.push((self.ty()?, at));
                if !self.comma_or(b')', "after a result type")? {
                    break;
                }
            }
        }
        Ok((func, name, name_at, result_types))
    }

    /// The name that starts the next instruction, or `None` at `return`.
    fn instruction_name(&mut self) -> PResult<Option<(&'a str, usize)>> {
        match self.next()? {
            (Tok::Ident("return"), _) => Ok(None),
            (Tok::Ident(n), at) => Ok(Some((n, at))),
            (Tok::Eof, at) => self.err(at, "unexpected end of file: the function has no 'return'"),
            (t, at) => self.err(
                at,
                format!("expected an instruction 'name: type = op ...' or 'return', found {t}"),
            ),
        }
    }

    /// The rest of an instruction `name: type = op operands [attributes]`, appended to `func`;
    /// if its attributes name functions, the call to make again once they are built (its
    /// `inst` field is for the caller to set).
    fn instruction(
        &mut self,
        func: &mut Func,
        names: &mut HashMap<&'a str, Value>,
        pending: &mut Vec<Pending<'a>>,
        name: &'a str,
        at: usize,
    ) -> PResult<Option<Call<'a>>> {
        let value = func.inst_value(func.insts.len());
        if names.insert(name, value).is_some() {
            return self.err(at, format!("'{name}' is already defined"));
        }
        self.expect_punct(b':', "after the value's name")?;
        let ty = self.ty()?;
        self.expect_punct(b'=', "after the value's type")?;
        let (opname, op_at) = self.expect_ident("an op name")?;
        let Some(code) = Opcode::from_name(opname) else {
            return self.err(op_at, format!("unknown op '{opname}'"));
        };
        let mut call = None;
        let (op, args) = if code == Opcode::Const {
            let value = self.literal(ty)?;
            (Op::Const { ty, value }, Vec::new())
        } else {
            let none = code.arity().accepts(0) && self.peek()?.0 == Tok::Punct(b'[');
            let args = if none {
                Vec::new()
            } else {
                self.operands(func.insts.len(), opname, names, pending)?
            };
            let (attrs, refs) = self.attrs()?;
            let op = self.make_op(code, op_at, &attrs)?;
            if !refs.is_empty() {
                call = Some(Call {
                    inst: 0,
                    code,
                    op_at,
                    attrs,
                    refs,
                });
            }
            (op, args)
        };
        let unnamed = Value::from_default_name(name) == Some(value);
        func.insts.push(Inst {
            op,
            args: args.into_boxed_slice(),
            ty,
            name: (!unnamed).then(|| name.into()),
        });
        Ok(call)
    }

    /// The comma-separated operands of instruction `inst`; names not yet defined are left
    /// `pending`, to be resolved (or reported) at the end of the function.
    fn operands(
        &mut self,
        inst: usize,
        opname: &str,
        names: &HashMap<&'a str, Value>,
        pending: &mut Vec<Pending<'a>>,
    ) -> PResult<Vec<Value>> {
        let mut args = Vec::new();
        loop {
            let (arg, arg_at) = match self.next()? {
                (Tok::Ident(a), at) => (a, at),
                (t, at) => {
                    return self.err(at, format!("expected an operand of {opname}, found {t}"))
                }
            };
            match names.get(arg) {
                Some(&v) => args.push(v),
                None => {
                    pending.push(Pending {
                        inst,
                        arg: args.len(),
                        name: arg,
                        offset: arg_at,
                    });
                    args.push(Value(u32::MAX));
                }
            }
            if !self.eat_punct(b',')? {
                self.no_missing_comma(opname, arg_at + arg.len())?;
                return Ok(args);
            }
        }
    }

    /// `return a, b, ...` (after the keyword): each a defined value of the declared type.
    fn returns(
        &mut self,
        func: &mut Func,
        names: &HashMap<&'a str, Value>,
        result_types: &[(Type, usize)],
    ) -> PResult<()> {
        loop {
            let (r, at) = self.expect_ident("a value to return")?;
            let Some(&v) = names.get(r) else {
                return self.err(at, format!("undefined value '{r}'"));
            };
            func.results.push(v);
            let rt = func.value_type(v);
            match result_types.get(func.results.len() - 1) {
                Some(&(t, _)) if t != rt => {
                    return self.err(
                        at,
                        format!("'{r}' has type {rt}, but the signature declares {t}"),
                    )
                }
                Some(_) => {}
                None => {
                    return self.err(
                        at,
                        format!(
                            "more values returned than the {} declared",
                            result_types.len()
                        ),
                    )
                }
            }
            if !self.eat_punct(b',')? {
                break;
            }
        }
        if func.results.len() != result_types.len() {
            let (_, at) = self.peek()?;
            return self.err(
                at,
                format!(
                    "{} values returned, but the signature declares {}",
                    func.results.len(),
                    result_types.len()
                ),
            );
        }
        Ok(())
    }
}

/// The first word of a checkpointing policy (`Parser::policy`).
fn is_policy(word: &str) -> bool {
    matches!(word, "all" | "carry" | "auto" | "binomial")
}
