//! The time of one compiled call, fastest and mean, for quiet comparisons on a noisy host:
//! `cargo run --release --example call_time -- FILE.ir f|grad|hvp|hvp+grad|jvp|hvp-fwdrev|hvp-revrev CALLS [auto|fast-code|fast-compile]`.
//! `hvp` is H v alone (`ad::hvp_only`) in the default mode, as `adjit bench` times it;
//! `hvp-fwdrev` and `hvp-revrev` the same in the mode named; `hvp+grad` is `ad::hvp`.
//! The fastest of many calls is the least disturbed by other load; `adjit bench` reports
//! medians. Also prints the compile time (of the transformed function) in the tier chosen, and
//! the size of its machine code.

use adjit::ad;
use adjit::call::Executor;
use adjit::ir::parse;
use adjit::jit::{Jit, JitOptions, Tier};

fn tier_of(name: &str) -> Result<Tier, String> {
    match name {
        "auto" => Ok(Tier::Auto),
        "fast-code" => Ok(Tier::FastCode),
        "fast-compile" => Ok(Tier::FastCompile),
        other => Err(format!(
            "`{other}`: expected auto, fast-code or fast-compile"
        )),
    }
}
use std::time::Instant;

fn run(args: &[String]) -> Result<String, String> {
    let (file, what, calls, tier) = match args {
        [file, what, calls] => (file, what, calls, Tier::Auto),
        [file, what, calls, tier] => (file, what, calls, tier_of(tier)?),
        _ => {
            return Err(
                "usage: call_time FILE.ir f|grad|hvp|hvp+grad|jvp|hvp-fwdrev|hvp-revrev CALLS \
             [auto|fast-code|fast-compile]"
                    .into(),
            )
        }
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let f = parse(&text).map_err(|e| format!("{file}: {e}"))?;
    let g = match what.as_str() {
        "f" => f,
        "grad" => ad::grad(&f, None).map_err(|e| e.to_string())?,
        "hvp" => ad::hvp_only(&f, None, ad::HvpMode::DEFAULT).map_err(|e| e.to_string())?,
        "hvp+grad" => ad::hvp(&f, None).map_err(|e| e.to_string())?,
        "jvp" => ad::jvp(&f, None).map_err(|e| e.to_string())?,
        "hvp-fwdrev" => ad::hvp_only(&f, None, ad::HvpMode::FwdRev).map_err(|e| e.to_string())?,
        "hvp-revrev" => ad::hvp_only(&f, None, ad::HvpMode::RevRev).map_err(|e| e.to_string())?,
        other => {
            return Err(format!(
                "`{other}`: expected f, grad, hvp, hvp+grad, jvp, hvp-fwdrev or hvp-revrev"
            ))
        }
    };
    let calls: u32 = calls
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{calls}`: expected a positive number of calls"))?;
    let start = Instant::now();
    let compiled = Jit::new(JitOptions {
        tier,
        ..JitOptions::default()
    })
    .compile(&g)
    .map_err(|e| e.to_string())?;
    let compile = start.elapsed().as_secs_f64();
    let inputs = adjit::inputs::defaults(&g, 0);
    let slices: Vec<&[f64]> = inputs.iter().map(|x| x.as_slice()).collect();
    let mut outs = compiled.try_outputs().map_err(|e| e.to_string())?;
    let mut ws = compiled.workspace();
    let (mut best, start) = (f64::MAX, Instant::now());
    for _ in 0..calls {
        let t = Instant::now();
        let mut o: Vec<&mut [f64]> = outs.iter_mut().map(|x| x.as_mut_slice()).collect();
        compiled
            .call(&mut ws, &slices, &mut o)
            .map_err(|e| e.to_string())?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mean = start.elapsed().as_secs_f64() / f64::from(calls);
    Ok(format!(
        "{file} {what}: fastest {:.3} us, mean {:.3} us over {calls} calls; compiled in {:.1} ms to {} KiB of code",
        best * 1e6,
        mean * 1e6,
        compile * 1e3,
        compiled.code_bytes() / 1024
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("call_time: {e}");
            std::process::exit(2);
        }
    }
}
