//! `adjit export`: a function and, on request, its gradient, hvp and dense Jacobian compiled
//! into one object file with a C header (`jit::export`), and optionally a shared library
//! linked by the system C compiler.

use crate::cli::jac::Mode;
use crate::cli::{load, CliError, CliResult};
use crate::{ad_error, wrt_slots, WrtArgs};
use adjit::ad;
use adjit::ir::Func;
use adjit::jit::export::{check_export_name, Entry};
use adjit::jit::{Jit, JitError};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Args)]
pub struct ExportArgs {
    /// The .ir file.
    file: PathBuf,
    /// Also export NAME_grad: the value, then the gradient per differentiated input (one
    /// scalar result).
    #[arg(long)]
    grad: bool,
    /// Also export NAME_hvp: its arguments are the function's, then one direction per
    /// differentiated input; its results the value, the gradient and the Hessian-vector
    /// product per input.
    #[arg(long)]
    hvp: bool,
    /// Also export NAME_jac: the results, then the dense Jacobian of each result by each
    /// differentiated input, of shape result.shape + input.shape.
    #[arg(long)]
    jac: bool,
    /// How NAME_jac computes: forward or reverse vector mode, or whichever has fewer
    /// directions (as `adjit jac --mode`; the two agree to rounding).
    #[arg(long, value_enum, default_value = "auto", requires = "jac")]
    jac_mode: Mode,
    #[command(flatten)]
    wrt: WrtArgs,
    /// Also link DIR/NAME.so with the system C compiler ($CC, else cc).
    #[arg(long)]
    shared: bool,
    /// Where to write: DIR/NAME.o and DIR/NAME.h (DIR is created if missing); NAME, a C
    /// identifier, prefixes every symbol.
    #[arg(short = 'o', long = "output", value_name = "DIR/NAME")]
    output: PathBuf,
    /// Generate for this target triple, with its baseline CPU (no FMA or AVX) and the C
    /// library's scalar math outside glibc Linux [default: this machine, with its CPU's
    /// extensions].
    #[arg(long)]
    target: Option<String>,
}

/// The functions to export, with their C names and result names (as the C API names them:
/// `y` or the results' own names, `grad_x`, `hvp_x`, `jac_y_x`).
fn entries(f: &Func, args: &ExportArgs, name: &str) -> CliResult<Vec<(String, Func, Vec<String>)>> {
    let file = &args.file;
    let wrt = args.wrt.names()?;
    let values = f.result_names();
    let mut out = vec![(name.to_string(), f.clone(), values.clone())];
    if !(args.grad || args.hvp || args.jac) {
        if wrt.is_some() {
            return Err(CliError(
                "--wrt chooses the inputs of --grad, --hvp or --jac; give one of them".into(),
            ));
        }
        return Ok(out);
    }
    let slots = wrt_slots(f, &args.wrt, file)?;
    let per_input =
        |stem: &str| -> Vec<String> { slots.iter().map(|(x, _)| format!("{stem}_{x}")).collect() };
    let scalar_only = |e: ad::AdError| match e {
        ad::AdError::NotScalar { .. } => {
            let types: Vec<String> = f.result_types().iter().map(|t| t.to_string()).collect();
            CliError(format!(
                "{}: --grad and --hvp need one scalar f64 result, but @{} returns ({}); --jac \
                 exports the Jacobian of any function",
                file.display(),
                f.name,
                types.join(", ")
            ))
        }
        e => ad_error(file, e),
    };
    if args.grad {
        let g = ad::grad(f, wrt.as_deref()).map_err(scalar_only)?;
        let names = [values[..1].to_vec(), per_input("grad")].concat();
        out.push((format!("{name}_grad"), g, names));
    }
    if args.hvp {
        let h = ad::hvp(f, wrt.as_deref()).map_err(scalar_only)?;
        let names = [values[..1].to_vec(), per_input("grad"), per_input("hvp")].concat();
        out.push((format!("{name}_hvp"), h, names));
    }
    if args.jac {
        let j = ad::jacobian(f, wrt.as_deref(), args.jac_mode.jacobian_mode())
            .map_err(|e| ad_error(file, e))?;
        let mut names = values.clone();
        for v in &values {
            names.extend(per_input(&format!("jac_{v}")));
        }
        out.push((format!("{name}_jac"), j, names));
    }
    Ok(out)
}

/// The base name of `-o DIR/NAME`, once checked: a usable C name, not a directory. Creates
/// `DIR` if it does not exist.
fn output_name(output: &Path) -> CliResult<String> {
    let shown = output.display();
    let text = output.to_string_lossy();
    if text.ends_with('/') || output.is_dir() {
        return Err(CliError(format!(
            "-o {shown}: give DIR/NAME, a path and a base name for NAME.o and NAME.h, not a \
             directory"
        )));
    }
    let name = output
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_string();
    check_export_name(&name).map_err(|e| CliError(format!("-o {shown}: {e}")))?;
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            CliError(format!(
                "-o {shown}: cannot create the directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(name)
}

pub fn export(args: &ExportArgs) -> CliResult<()> {
    let start = Instant::now();
    let name = output_name(&args.output)?;
    let f = load(&args.file)?;
    let funcs = entries(&f, args, &name)?;
    let list: Vec<Entry> = funcs
        .iter()
        .map(|(n, func, outputs)| Entry {
            name: n.clone(),
            func,
            outputs: outputs.clone(),
        })
        .collect();
    let exported = Jit::default()
        .export(&name, &list, args.target.as_deref())
        .map_err(|e| match e {
            JitError::Target(e) => CliError(format!("--target: {e}")),
            e => CliError(format!("{}: {e}", args.file.display())),
        })?;
    let object = args.output.with_extension("o");
    let header = args.output.with_extension("h");
    write(&object, &exported.object)?;
    write(&header, exported.header.as_bytes())?;
    let mut written = vec![object.display().to_string(), header.display().to_string()];
    if args.shared {
        let library = args.output.with_extension("so");
        link_shared(&object, &library)?;
        written.push(library.display().to_string());
    }
    let names: Vec<&str> = funcs.iter().map(|(n, ..)| n.as_str()).collect();
    outln!(
        "exported {} ({} bytes of machine code) in {:.1} ms: {}",
        names.join(", "),
        exported.code_bytes,
        start.elapsed().as_secs_f64() * 1e3,
        written.join(", ")
    )
}

fn write(path: &Path, bytes: &[u8]) -> CliResult<()> {
    std::fs::write(path, bytes)
        .map_err(|e| CliError(format!("{}: cannot write the file: {e}", path.display())))
}

/// Links `object` into the shared library `library` with `$CC` (default `cc`) and the C math
/// library.
fn link_shared(object: &Path, library: &Path) -> CliResult<()> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let result = Command::new(&cc)
        .arg("-shared")
        .arg("-o")
        .arg(library)
        .arg(object)
        .arg("-lm")
        .output();
    match result {
        Err(e) => Err(CliError(format!(
            "--shared: cannot run the C compiler `{cc}` ({e}); install one (gcc or clang) or set \
             CC, or link {} yourself: cc -shared -o {} {} -lm",
            object.display(),
            library.display(),
            object.display()
        ))),
        Ok(out) if !out.status.success() => Err(CliError(format!(
            "--shared: `{cc} -shared` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))),
        Ok(_) => Ok(()),
    }
}
