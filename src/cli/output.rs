//! Where results go: every line a command prints goes through `write_out` (by the `outln!` and
//! `out!` macros in `main.rs`), which returns write errors instead of panicking as `println!`
//! does. A reader that went away (a broken pipe, as with `| head`) ends the program quietly
//! with status 0; any other write error (a full disk) is a `CliError` with status 1.

use super::{CliError, CliResult};
use std::fmt;
use std::io::{self, ErrorKind, Write};

/// Writes `args` to standard output and flushes it, so that a failed write is seen here.
pub fn write_out(args: fmt::Arguments) -> CliResult<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| output_error(&e))
}

/// The error of a failed write: quiet for a reader that went away.
fn output_error(e: &io::Error) -> CliError {
    if e.kind() == ErrorKind::BrokenPipe {
        CliError::reader_gone()
    } else {
        CliError(format!("cannot write the output: {e}"))
    }
}
