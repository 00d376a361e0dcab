//! Malformed `.ir` text: every case is a clean error with a position and a message that says
//! what is wrong, never a panic. One `check` drives the table; a property test feeds random text
//! and random mutations of the shipped files to the reader, the verifier and the interpreter.

mod common;

use adjit::ir::{self, parse_bytes};
use proptest::prelude::*;

const HEAD: &str = "func @f(x: f64[]) -> (f64[]) {\n";

/// Parses `text` and verifies it; expects an error on `line` (and `col`, for parse errors) whose
/// message contains `want`.
fn check(name: &str, text: &[u8], line: usize, col: Option<usize>, want: &str) {
    match parse_bytes(text) {
        Err(e) => {
            assert_eq!((e.line, name), (line, name), "{name}: wrong line in {e}");
            if let Some(c) = col {
                assert_eq!((e.col, name), (c, name), "{name}: wrong column in {e}");
            }
            assert!(e.message.contains(want), "{name}: {e:?} lacks {want:?}");
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("{}:{}: ", e.line, e.col)),
                "{name}: {shown}"
            );
            assert!(shown.contains('^'), "{name}: no caret in {shown}");
        }
        Ok((f, lines)) => {
            let err = ir::verify(&f).expect_err(name);
            let hit = err.issues.iter().any(|i| {
                i.message.contains(want) && i.inst.map_or(1, |k| lines[k] as usize) == line
            });
            assert!(
                hit,
                "{name}: no error on line {line} containing {want:?} in:\n{err}"
            );
            assert!(
                err.to_string().contains(&err.issues[0].line),
                "{name}: rendered line missing"
            );
        }
    }
}

/// Name, text, expected line, expected column (parse errors), expected message fragment.
type Case = (&'static str, Vec<u8>, usize, Option<usize>, &'static str);

fn body(lines: &str) -> String {
    format!("{HEAD}{lines}    return v1\n}}\n")
}

#[test]
fn malformed_inputs_give_positioned_errors() {
    let cases: Vec<Case> = vec![
        ("empty file", b"".to_vec(), 1, Some(1), "empty file"),
        ("only a comment", b"; nothing here\n".to_vec(), 2, Some(1), "empty file"),
        ("truncated body", format!("{HEAD}    v1: f64[] = neg x\n").into_bytes(), 3, Some(1), "no 'return'"),
        ("truncated mid-type", b"func @f(x: f64[".to_vec(), 1, Some(16), "expected an integer"),
        ("unknown op", body("    v1: f64[] = frob x\n").into_bytes(), 2, Some(17), "unknown op 'frob'"),
        ("wrong arity", body("    v1: f64[] = add x\n").into_bytes(), 2, None, "takes 2 operands, got 1"),
        ("undefined before a later error", "func @f(x: f64[2]) -> (f64[]) {\n    a: f64[2] = exp y\n    return a\n}\n".as_bytes().to_vec(), 2, Some(21), "undefined value 'y'"),
        ("type mismatch", "func @f(x: f64[]) -> (f64[3]) {\n    v1: f64[3] = neg x\n    return v1\n}\n".as_bytes().to_vec(), 2, None, "declared type f64[3] but neg gives f64[]"),
        ("operand shapes differ", "func @f(x: f64[2], y: f64[3]) -> (f64[2]) {\n    v2: f64[2] = add x, y\n    return v2\n}\n".as_bytes().to_vec(), 2, None, "equal shapes"),
        ("duplicate name", body("    v1: f64[] = neg x\n    v1: f64[] = neg x\n").into_bytes(), 3, Some(5), "already defined"),
        ("use before definition", body("    v1: f64[] = neg v2\n    v2: f64[] = neg x\n").into_bytes(), 2, None, "used before its definition"),
        ("undefined value", body("    v1: f64[] = neg y\n").into_bytes(), 2, Some(21), "undefined value 'y'"),
        ("bad shape", body("    v1: f64[3,x] = neg x\n").into_bytes(), 2, Some(15), "expected an integer"),
        ("bad float", body("    v1: f64[] = const 1.2.3\n").into_bytes(), 2, Some(23), "bad number"),
        ("huge float", body("    v1: f64[] = const 1e999\n").into_bytes(), 2, Some(23), "out of range"),
        ("huge dimension", body("    v1: f64[99999999999] = const 0.0\n").into_bytes(), 2, Some(9), "type f64[99999999999] has a dimension 99999999999 that is too large"),
        ("too many elements", body("    v1: f64[100000,100000] = const 0.0\n").into_bytes(), 2, Some(9), "type f64[100000,100000] has more than 4294967296 elements"),
        ("missing comma", body("    v1: f64[] = mul x x\n").into_bytes(), 2, Some(23), "expected ',' between the operands of mul, found 'x'"),
        ("missing colon on the next line", body("    v1: f64[] = neg x\n    v2 f64[] = neg x\n").into_bytes(), 3, Some(8), "expected ':' after the value's name, found 'f64'"),
        ("missing comma before a number", body("    v1: f64[] = mul x 2\n").into_bytes(), 2, Some(23), "expected ',' between the operands of mul, found number '2'"),
        ("missing comma, more operands", "func @f(x: f64[], c: bool[]) -> (f64[]) {\n    v2: f64[] = select c, x x\n    return v2\n}\n".as_bytes().to_vec(), 2, Some(29), "expected ',' between the operands of select"),
        ("rank too high", body("    v1: f64[1,1,1,1,1,1,1,1,1] = const 0.0\n").into_bytes(), 2, Some(9), "has 9 dimensions (at most 8)"),
        ("too many axes", "func @f(x: f64[1]) -> (f64[]) {\n    v1: f64[] = reduce_sum x [axes=[0,0,0,0,0,0,0,0,0]]\n    return v1\n}\n".as_bytes().to_vec(), 2, Some(36), "the axes list: 9 entries exceed the maximum rank 8"),
        ("non-UTF-8 bytes", [HEAD.as_bytes(), b"    v1: f64[] = neg \xff\xfe\n"].concat(), 2, Some(21), "not valid UTF-8"),
        ("unknown dtype", body("    v1: i32[] = neg x\n").into_bytes(), 2, Some(9), "unknown element type 'i32'"),
        ("missing attribute", "func @f(x: f64[3]) -> (f64[]) {\n    v1: f64[] = reduce_sum x\n    return v1\n}\n".as_bytes().to_vec(), 2, Some(17), "needs the attribute 'axes'"),
        ("unknown attribute", body("    v1: f64[] = neg x [axes=[0]]\n").into_bytes(), 2, Some(24), "has no attribute 'axes'"),
        ("return type mismatch", "func @f(x: f64[]) -> (f64[3]) {\n    return x\n}\n".as_bytes().to_vec(), 2, Some(12), "signature declares f64[3]"),
        ("too few results", "func @f(x: f64[]) -> (f64[], f64[]) {\n    return x\n}\n".as_bytes().to_vec(), 3, Some(1), "declares 2"),
        ("trailing garbage", format!("{}junk\n", body("    v1: f64[] = neg x\n")).into_bytes(), 5, Some(1), "expected end of file"),
        ("stray character", body("    v1: f64[] = neg $x\n").into_bytes(), 2, Some(21), "unexpected character '$'"),
        ("duplicate parameter", b"func @f(x: f64[], x: f64[]) -> (f64[]) {\n    return x\n}\n".to_vec(), 1, Some(19), "declared twice"),
        ("bool literal for f64", body("    v1: f64[] = const true\n").into_bytes(), 2, Some(23), "bool literal"),
        ("reshape count", "func @f(x: f64[6]) -> (f64[4]) {\n    v1: f64[4] = reshape x [shape=[4]]\n    return v1\n}\n".as_bytes().to_vec(), 2, None, "holds 4 elements"),
        ("slice out of range", "func @f(x: f64[3]) -> (f64[2]) {\n    v1: f64[2] = slice x [start=[2], stop=[4]]\n    return v1\n}\n".as_bytes().to_vec(), 2, None, "start <= stop <= 3"),
        ("literal length", "func @f(x: f64[]) -> (f64[3]) {\n    v1: f64[3] = const [1.0, 2.0]\n    return v1\n}\n".as_bytes().to_vec(), 2, None, "2 elements given"),
        ("matmul sizes", "func @f(a: f64[2,3], b: f64[2,3]) -> (f64[2,3]) {\n    v2: f64[2,3] = matmul a, b\n    return v2\n}\n".as_bytes().to_vec(), 2, None, "contracted sizes differ"),
        ("bad permutation", "func @f(a: f64[2,3]) -> (f64[3,2]) {\n    v1: f64[3,2] = transpose a [perm=[0,0]]\n    return v1\n}\n".as_bytes().to_vec(), 2, None, "not a permutation"),
        ("select needs a mask", "func @f(a: f64[2]) -> (f64[2]) {\n    v1: f64[2] = select a, a, a\n    return v1\n}\n".as_bytes().to_vec(), 2, None, "condition must be bool"),
        ("bad distribution", b"func @f(x: f64[] ~ cauchy) -> (f64[]) {\n    return x\n}\n".to_vec(), 1, Some(20), "unknown distribution"),
        ("no function name", b"func (x: f64[]) -> (f64[]) {\n    return x\n}\n".to_vec(), 1, Some(6), "function name"),
        ("garbage after a second function", format!("{}{}junk\n", body("    v1: f64[] = neg x\n"), body("    v1: f64[] = neg x\n").replace("@f", "@g")).into_bytes(), 9, Some(1), "expected end of file or another 'func'"),
        scan_case("policy of no carries", "[body=@g, carries=1, consts=0, length=1, checkpoint=binomial(0)]", "0)", "binomial(s) stores s >= 1 carries"),
        scan_case("policy unclosed", "[body=@g, carries=1, consts=0, length=1, checkpoint=binomial(3]", "]", "expected ')' after the number of stored carries"),
        scan_case("policy as a number", "[body=@g, carries=1, consts=0, length=1, checkpoint=3]", "checkpoint", "attribute 'checkpoint' takes all, carry, binomial(<snapshots>) or auto"),
        scan_case("unknown policy", "[body=@g, carries=1, consts=0, length=1, checkpoint=sometimes]", "sometimes", "expected an integer for checkpoint, found 'sometimes'"),
        scan_case("body as a number", "[body=5, carries=1, consts=0, length=1]", "body", "attribute 'body' takes a function such as @step"),
        scan_case("function where a number goes", "[body=@g, carries=1, consts=0, length=@g]", "length", "attribute 'length' takes an integer"),
        scan_case("a lone @", "[body=@g, carries=1, consts=0, length=1, replay=@]", "@]", "expected a function name after '@'"),
        scan_case("no body", "[carries=1, consts=0, length=1]", "[", "scan needs the attribute 'body'"),
    ];
    assert!(cases.len() >= 15);
    for (name, text, line, col, want) in cases {
        check(name, &text, line, col, want);
    }
}

/// A case of a file whose scan (on line 2) is `scan x ATTRS`, with a function `@g` after it;
/// the error is at the last `at` of the line, or at `scan` if `at` is `[`.
fn scan_case(name: &'static str, attrs: &str, at: &str, want: &'static str) -> Case {
    let line = format!("    s: f64[1] = scan x {attrs}");
    let col = if at == "[" {
        17
    } else {
        line.rfind(at).unwrap() + 1
    };
    let text = format!("func @f(x: f64[]) -> (f64[1]) {{\n{line}\n    return s\n}}\n\nfunc @g(h: f64[]) -> (f64[]) {{\n    return h\n}}\n");
    (name, text.into_bytes(), 2, Some(col), want)
}

/// `n` functions, each calling the next through a scan, the last calling none; callees first,
/// as the writer prints them.
fn chain(n: usize) -> String {
    let mut text = String::new();
    for i in (0..n).rev() {
        let call = if i + 1 < n {
            format!("    s: f64[1] = scan h [body=@f{}, carries=1, consts=0, length=1]\n    r: f64[] = reshape s [shape=[]]\n", i + 1)
        } else {
            "    r: f64[] = neg h\n".to_string()
        };
        if i + 1 < n {
            text.push('\n');
        }
        text += &format!("func @f{i}(h: f64[]) -> (f64[]) {{\n{call}    return r\n}}\n");
    }
    text
}

/// The reader refuses calls nested deeper than `MAX_NESTING` before building anything, so a
/// chain of 10,000 functions is an error, not a stack overflow in whatever walks bodies.
#[test]
fn deep_chains_of_functions_are_refused() {
    let limit = ir::read::MAX_NESTING;
    let f = ir::parse(&chain(limit)).expect("a chain at the limit reads");
    ir::verify(&f).unwrap();
    assert_eq!(f.to_string(), chain(limit));
    for n in [limit + 1, 10_000] {
        let e = ir::parse(&chain(n)).unwrap_err();
        assert!(
            e.message
                .contains(&format!("functions nest more than {limit} deep")),
            "{e}"
        );
        // At the call in the function holding 65: after the last (4 lines) and 63 of 6 lines.
        assert_eq!((e.line, e.col), (4 + 6 * (limit - 1) + 3, 30), "{e}");
    }
}

/// Functions that each call the next two: the unshared expansion has Fibonacci(60) functions,
/// yet reading, verifying and printing each function once takes no time.
#[test]
fn shared_functions_are_checked_once() {
    let n = 60;
    let mut text = String::new();
    for i in 0..n {
        let mut lines = String::new();
        let mut acc = "h".to_string();
        for (k, j) in [i + 1, i + 2].into_iter().filter(|&j| j < n).enumerate() {
            lines += &format!("    s{k}: f64[1] = scan {acc} [body=@f{j}, carries=1, consts=0, length=1]\n    r{k}: f64[] = reshape s{k} [shape=[]]\n");
            acc = format!("r{k}");
        }
        if acc == "h" {
            lines += "    r0: f64[] = neg h\n";
            acc = "r0".into();
        }
        text =
            format!("func @f{i}(h: f64[]) -> (f64[]) {{\n{lines}    return {acc}\n}}\n\n") + &text;
    }
    let start = std::time::Instant::now();
    let f = ir::parse(&text).unwrap();
    ir::verify(&f).unwrap();
    let printed = f.to_string();
    assert_eq!(printed, text.trim_end().to_string() + "\n");
    assert_eq!(ir::parse(&printed).unwrap().to_string(), printed);
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}

/// A line of about 1 MB: a constant of `n` elements with `bad` in place of element `at`.
fn long_line(n: usize, at: usize, bad: &str) -> String {
    let elems: Vec<&str> = (0..n).map(|i| if i == at { bad } else { "1.5" }).collect();
    format!(
        "func @f(x: f64[]) -> (f64[{n}]) {{\n    v1: f64[{n}] = const [{}]\n    return v1\n}}\n",
        elems.join(", ")
    )
}

#[test]
fn errors_on_long_lines_quote_a_window() {
    let n = 200_000;
    for at in [3, n / 2, n - 1] {
        let text = long_line(n, at, "$");
        assert!(text.len() > 1_000_000);
        let e = ir::parse(&text).unwrap_err();
        let shown = e.to_string();
        assert!(shown.len() < 1024, "{} bytes for element {at}", shown.len());
        assert_eq!(e.line, 2);
        assert_eq!(e.message, "unexpected character '$'");
        let under: Vec<char> = e.source_line.chars().collect();
        assert_eq!(under.get(e.caret), Some(&'$'), "caret misplaced in {shown}");
        let caret_line = shown.lines().last().unwrap();
        assert_eq!(caret_line.chars().count(), 4 + e.caret + 1, "{shown}");
        assert_eq!(e.source_line.starts_with('…'), at > 3, "{shown}");
        assert_eq!(e.source_line.ends_with('…'), at < n - 1, "{shown}");
    }
}

#[test]
fn huge_tokens_make_short_messages() {
    let name = "y".repeat(1 << 20);
    let number = "7".repeat(1 << 20);
    let dims = vec!["1"; 1 << 19].join(",");
    let cases = [
        (
            "undefined name",
            body(&format!("    v1: f64[] = neg {name}\n")),
            "undefined value 'yyy",
        ),
        (
            "huge number",
            body(&format!("    v1: f64[{number}] = neg x\n")),
            "is too large",
        ),
        (
            "huge rank",
            body(&format!("    v1: f64[{dims}] = neg x\n")),
            "has 524288 dimensions (at most 8)",
        ),
    ];
    for (what, text, want) in cases {
        let e = ir::parse(&text).unwrap_err();
        assert!(e.message.contains(want), "{what}: {}", e.message);
        assert!(
            e.to_string().len() < 1024,
            "{what}: {} bytes",
            e.to_string().len()
        );
    }
}

#[test]
fn verify_errors_on_long_lines_quote_a_window() {
    let text = long_line(200_000, 0, "1.5").replace("-> (f64[200000])", "-> (f64[3])");
    let text = text.replacen("v1: f64[200000]", "v1: f64[3]", 1);
    let f = ir::parse(&text).unwrap();
    let e = ir::verify(&f).unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("200000 elements given"), "{shown}");
    assert!(shown.len() < 1024, "{} bytes", shown.len());
}

#[test]
fn verifier_collects_every_error() {
    let text = body("    v1: f64[] = add x\n    v2: f64[2] = neg x\n    v3: f64[] = neg v4\n    v4: f64[] = neg x\n");
    let f = ir::parse(&text).unwrap();
    let err = ir::verify(&f).unwrap_err();
    assert_eq!(err.issues.len(), 3, "{err}");
    let messages: Vec<&str> = err.issues.iter().map(|i| i.message.as_str()).collect();
    assert!(messages[0].contains("takes 2 operands"), "{err}");
    assert!(messages[1].contains("declared type f64[2]"), "{err}");
    assert!(messages[2].contains("before its definition"), "{err}");
}

/// Byte-level edits of a valid file.
fn mutate(text: &str, edits: &[(u8, usize, usize, u8)]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for &(kind, at, len, byte) in edits {
        if b.is_empty() {
            break;
        }
        let at = at % b.len();
        match kind % 5 {
            0 => {
                let end = (at + len % 16).min(b.len());
                b.drain(at..end);
            }
            1 => b.insert(at, byte),
            2 => b[at] = byte,
            3 => {
                // Duplicate a chunk (often a whole line).
                let end = (at + len % 64).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            _ => {
                let tokens: [&[u8]; 10] = [
                    b"[",
                    b"]",
                    b",",
                    b"f64[0]",
                    b"-",
                    b"1e400",
                    b"axes=[9]",
                    b"v1",
                    b"\n",
                    b"const",
                ];
                let t = tokens[byte as usize % tokens.len()];
                b.splice(at..at, t.iter().copied());
            }
        }
    }
    b
}

/// Parses, verifies and (when small) runs whatever `bytes` holds; must never panic.
fn survive(bytes: &[u8]) {
    if let Ok((f, _)) = parse_bytes(bytes) {
        let _ = f.to_string();
        // Scans do not run yet.
        let scan = f.insts.iter().any(|i| i.op.opcode() == ir::Opcode::Scan);
        if ir::verify(&f).is_ok() && common::total_elements(&f) < 1_000_000 && !scan {
            let inputs = adjit::inputs::defaults(&f, 1);
            adjit::interp::eval(&f, &inputs).expect("a verified function runs");
        }
    }
}

fn corpus() -> Vec<&'static str> {
    adjit::models::ALL
        .iter()
        .filter(|m| m.text.len() < 20_000)
        .map(|m| m.text)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        survive(&bytes);
    }

    #[test]
    fn random_token_soup_never_panics(words in proptest::collection::vec(
        prop::sample::select(vec!["func", "@f", "(", ")", "->", "{", "}", "x", ":", "f64", "bool", "[", "]", "3", ",",
            "=", "const", "add", "neg", "return", "v1", "1.5", "-", "~", "uniform", "data", "reduce_sum", "axes", "\n", ";",
            "scan", "@g", "body", "binomial", "carry", "length"]),
        0..60)) {
        survive(words.join(" ").as_bytes());
    }

    #[test]
    fn mutated_models_never_panic(
        which in 0usize..16,
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let files = corpus();
        let text = files[which % files.len()];
        survive(&mutate(text, &edits));
    }
}

#[test]
fn a_byte_order_mark_is_not_text() {
    let text = "\u{feff}func @f(x: f64[]) -> (f64[]) {\n    y: f64[] = exp x\n    return y\n}\n";
    let (f, _) = parse_bytes(text.as_bytes()).expect("a leading BOM is skipped");
    assert_eq!(f.to_string(), text.trim_start_matches('\u{feff}'));
}
