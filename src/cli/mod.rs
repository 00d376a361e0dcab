//! The command line's plumbing: reading `.ir` files with positioned errors, reading inputs from
//! arguments and JSON, and printing results as text or JSON. Commands live in `main.rs`.

pub mod batch;
pub mod bench;
pub mod check;
pub mod export;
pub mod jac;
pub mod measure;
pub mod output;
pub mod values;

use adjit::ir::{self, Func};
use std::fmt;
use std::path::Path;

/// A user-facing error: printed as it is, then the process exits with status 1. The one
/// error with no message (`reader_gone`) says that the reader of the output went away: the
/// program ends quietly, with status 0.
#[derive(Debug)]
pub struct CliError(pub String);

impl CliError {
    /// The reader of the output went away (a broken pipe): nothing more to say or print.
    pub fn reader_gone() -> CliError {
        CliError(String::new())
    }

    pub fn is_reader_gone(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CliError {
    fn from(s: String) -> Self {
        CliError(s)
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// Reads, parses and verifies a `.ir` file. Errors read `path:line:col: message`, followed by
/// the offending line.
pub fn load(path: &Path) -> CliResult<Func> {
    let shown = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| CliError(format!("{shown}: cannot read the file: {e}")))?;
    let (f, lines) = ir::parse_bytes(&bytes).map_err(|e| {
        CliError(format!(
            "{shown}:{}:{}: {}\n    {}\n    {}^",
            e.line,
            e.col,
            e.message,
            e.source_line,
            " ".repeat(e.caret)
        ))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let source_lines: Vec<&str> = text.lines().collect();
    verified(f, |inst| {
        let line = inst.map_or(1, |k| lines[k] as usize);
        let indent = source_lines
            .get(line - 1)
            .map_or(0, |l| l.len() - l.trim_start().len());
        format!("{shown}:{line}:{}", indent + 1)
    })
}

fn verified(f: Func, place: impl Fn(Option<usize>) -> String) -> CliResult<Func> {
    match ir::verify(&f) {
        Ok(()) => Ok(f),
        Err(e) => {
            let msgs: Vec<String> = e
                .issues
                .iter()
                .map(|i| {
                    let (line, _) = ir::read::quote(&i.line, 1);
                    format!("{}: {}\n    {line}", place(i.inst), i.message)
                })
                .collect();
            Err(CliError(msgs.join("\n")))
        }
    }
}
