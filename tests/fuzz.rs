//! A structure-aware fuzzer of the whole pipeline, run for a bounded time: reader, verifier,
//! interpreter and JIT, and the gradient where there is one.
//!
//! Each case takes a valid function (a random graph, a shipped model or a filetest), makes a
//! few token-level edits that keep it close to valid (another number, op, operand, dtype or
//! special float; a line deleted or repeated), and feeds the text through the pipeline. Nothing
//! may panic; every function that verifies must run in both executors with bit-identical
//! results (NaN matching NaN), and so must its gradient.
//!
//! `ADJIT_FUZZ_SECONDS` sets the budget (default 10), `ADJIT_FUZZ_SEED` the first seed (cases
//! use consecutive seeds, and a failure names its seed and text, so it can be replayed).

mod common;

use adjit::call::Executor;
use adjit::inputs::{defaults, Rng};
use adjit::ir::{self, Func, Opcode};
use adjit::{ad, interp, jit};
use common::random_graph::random_func;
use std::time::{Duration, Instant};

/// Functions above this many elements in all are not run (a mutated shape can ask for
/// gigabytes; the memory-limit tests cover that path).
const MAX_ELEMENTS_RUN: usize = 200_000;

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = adjit::models::ALL
        .iter()
        .filter(|m| m.text.len() < 20_000)
        .map(|m| m.text.to_string())
        .collect();
    let dir = common::repo_path("ir/filetests/run");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for p in files {
        texts.push(std::fs::read_to_string(p).unwrap());
    }
    // Without comments, whose words would be taken for names.
    texts
        .iter()
        .map(|t| {
            t.lines()
                .filter(|l| !l.starts_with(';'))
                .map(|l| format!("{l}\n"))
                .collect()
        })
        .collect()
}

/// Splits text into tokens: runs of word characters (names, numbers, `@f`), and single others.
fn tokens(text: &str) -> Vec<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || "_.@+-".contains(c);
    let mut out: Vec<String> = Vec::new();
    for c in text.chars() {
        match out.last_mut() {
            Some(t) if word(c) && t.chars().all(word) => t.push(c),
            _ => out.push(c.to_string()),
        }
    }
    out
}

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.below(xs.len())]
}

/// The kinds of edit, with their weights.
const EDITS: [(&str, usize); 6] = [
    ("integer", 30),
    ("float", 15),
    ("op", 20),
    ("operand", 20),
    ("dtype", 5),
    ("line", 4),
];

fn is_name(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// One edit of the token list.
fn edit(rng: &mut Rng, toks: &mut Vec<String>) {
    let mut r = rng.below(EDITS.iter().map(|e| e.1).sum());
    let mut kind = "line";
    for (k, weight) in EDITS {
        if r < weight {
            kind = k;
            break;
        }
        r -= weight;
    }
    // Binders (a name before ':') are the values an operand can refer to.
    let binders: Vec<String> = (1..toks.len())
        .filter(|&i| toks[i] == ":" && is_name(&toks[i - 1]))
        .map(|i| toks[i - 1].clone())
        .collect();
    let fits = |t: &str| match kind {
        "integer" => t.bytes().all(|b| b.is_ascii_digit()),
        "float" => t.contains('.') && t.parse::<f64>().is_ok(),
        "op" => Opcode::from_name(t).is_some(),
        "operand" => binders.iter().any(|b| b == t),
        "dtype" => t == "f64" || t == "bool",
        _ => t == "\n",
    };
    // Operands are uses of a name, not its binder.
    let is_use = |i: usize| kind != "operand" || toks.get(i + 1).is_none_or(|t| t != ":");
    let candidates: Vec<usize> = (0..toks.len())
        .filter(|&i| fits(&toks[i]) && is_use(i))
        .collect();
    if candidates.is_empty() {
        return;
    }
    let at = *pick(rng, &candidates);
    let t = toks[at].clone();
    toks[at] = match kind {
        "integer" => {
            let n: usize = t.parse().unwrap_or(0);
            pick(rng, &[0, 1, 2, 3, 4, 7, n + 1, n.saturating_sub(1)]).to_string()
        }
        "float" => pick(
            rng,
            &[
                "nan", "inf", "-inf", "-0.0", "1e308", "5e-324", "0.0", "2.5",
            ],
        )
        .to_string(),
        "op" => another_op(rng, &t),
        "operand" => pick(rng, &binders).clone(),
        "dtype" => if t == "f64" { "bool" } else { "f64" }.to_string(),
        _ => {
            // Delete or repeat the line that ends at `at`.
            let start = toks[..at]
                .iter()
                .rposition(|s| s == "\n")
                .map_or(0, |i| i + 1);
            let line: Vec<String> = toks[start..=at].to_vec();
            if rng.uniform() < 0.5 {
                toks.drain(start..=at);
            } else {
                toks.splice(at + 1..at + 1, line);
            }
            return;
        }
    };
}

/// Usually an op of the same family (same operands and attributes), sometimes any op.
fn another_op(rng: &mut Rng, name: &str) -> String {
    let family = |op: Opcode| match op {
        Opcode::Unary(_) => 0,
        Opcode::Binary(_) | Opcode::Compare(_) => 1,
        Opcode::ReduceSum | Opcode::ReduceMax => 2,
        Opcode::Const
        | Opcode::Select
        | Opcode::Broadcast
        | Opcode::Reshape
        | Opcode::Transpose
        | Opcode::Slice
        | Opcode::Pad
        | Opcode::Concat
        | Opcode::Matmul
        | Opcode::Scan => 3,
    };
    let this = Opcode::from_name(name).map_or(3, family);
    let same: Vec<Opcode> = Opcode::ALL
        .into_iter()
        .filter(|&o| family(o) == this)
        .collect();
    let pool = if this == 3 || rng.uniform() < 0.1 {
        &Opcode::ALL[..]
    } else {
        &same[..]
    };
    pick(rng, pool).name().to_string()
}

fn mutated(rng: &mut Rng, text: &str) -> String {
    let mut toks = tokens(text);
    for _ in 0..1 + rng.below(3) {
        if !toks.is_empty() {
            edit(rng, &mut toks);
        }
    }
    toks.concat()
}

fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.iter().zip(b).all(|(x, y)| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()))
    })
}

fn compiled(f: &Func, inputs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let c = jit::compile(f).unwrap_or_else(|e| panic!("a verified function compiles: {e}"));
    c.eval(inputs).expect("small buffers fit and match")
}

/// Runs `f` in both executors; they must agree.
fn differential(f: &Func, what: &str) {
    let inputs = defaults(f, 7);
    let want = interp::eval(f, &inputs).expect("a verified function runs");
    let got = compiled(f, &inputs);
    assert!(
        same_bits(&want, &got),
        "{what}: JIT {got:?} vs interpreter {want:?}"
    );
}

/// What one case reached: 0 = did not parse, 1 = parsed, 2 = verified, 3 = ran both executors.
fn case(text: &str) -> usize {
    let f = match ir::parse(text) {
        Ok(f) => f,
        Err(e) => {
            if std::env::var_os("ADJIT_FUZZ_DEBUG").is_some() {
                eprintln!("{e}");
            }
            return 0;
        }
    };
    let printed = f.to_string();
    if ir::verify(&f).is_err() {
        return 1;
    }
    assert_eq!(ir::parse(&printed).as_ref(), Ok(&f), "round trip");
    if common::total_elements(&f) > MAX_ELEMENTS_RUN {
        return 2;
    }
    differential(&f, "f");
    // Not every function has a gradient (bool or non-scalar results): those are errors.
    if let Ok(g) = ad::grad(&f, None) {
        differential(&g, "grad");
    }
    3
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn mutated_functions_through_the_whole_pipeline() {
    let budget = Duration::from_secs(env_u64("ADJIT_FUZZ_SECONDS", 10));
    let first = env_u64("ADJIT_FUZZ_SEED", 0);
    let base = corpus();
    let start = Instant::now();
    let mut reached = [0usize; 4];
    let mut seed = first;
    while start.elapsed() < budget {
        let mut rng = Rng::new(seed);
        let text = if rng.uniform() < 0.5 {
            random_func(seed, 1 + rng.below(12)).to_string()
        } else {
            pick(&mut rng, &base).clone()
        };
        let text = mutated(&mut rng, &text);
        let outcome = std::panic::catch_unwind(|| case(&text));
        match outcome {
            Ok(stage) => reached[stage] += 1,
            Err(_) => panic!("seed {seed} (ADJIT_FUZZ_SEED={seed}) failed on:\n{text}"),
        }
        seed += 1;
    }
    let cases = seed - first;
    eprintln!("{cases} cases: {reached:?} (unparsed, parsed, verified, ran)");
    // A fuzzer whose cases never get far tests little.
    assert!(cases >= 100, "only {cases} cases in {budget:?}");
    assert!(
        reached[3] * 8 >= cases as usize,
        "too few cases ran: {reached:?}"
    );
    assert!(
        reached[0] + reached[1] > 0,
        "no case was invalid: {reached:?}"
    );
}
