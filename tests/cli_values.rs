//! The command line's values end to end: every number read back bit for bit through every
//! input path, every printed output read back as an input (empty shapes included), one rule
//! for elements on every path, bools printed as true/false, and values given twice refused.

mod common;

use common::cli::{adjit_in as adjit, assert_fails, stderr, Scratch};
use proptest::prelude::*;
use serde_json::{json, Value as Json};
use std::path::Path;

/// Stdout of a command that must succeed.
fn ok_stdout(dir: &Path, args: &[&str]) -> String {
    let o = adjit(dir, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

fn ok_json(dir: &Path, args: &[&str]) -> Json {
    serde_json::from_str(&ok_stdout(dir, args)).expect("valid JSON")
}

/// Runs a command that must fail with status 1 and an error containing `want`.
fn fails(dir: &Path, args: &[&str], want: &str) {
    assert_fails(&adjit(dir, args), args, 1, want);
}

/// A fresh scratch directory (removed when dropped).
/// A number as the JSON input form takes it: non-finite values as strings.
fn number(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or_else(
        || {
            Json::String(
                if x.is_nan() {
                    "NaN"
                } else if x > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        },
        Json::Number,
    )
}

/// One printed element back as f64 bits' worth: numbers, non-finite strings, bools as 1/0.
fn element(v: &Json) -> f64 {
    match v {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::Bool(b) => f64::from(u8::from(*b)),
        Json::String(s) if s == "NaN" => f64::NAN,
        Json::String(s) if s == "Infinity" => f64::INFINITY,
        Json::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => panic!("not an element: {other}"),
    }
}

/// The elements of printed nested arrays, asserting they have exactly `shape`.
fn flatten(v: &Json, shape: &[usize], out: &mut Vec<f64>) {
    match shape.split_first() {
        None => out.push(element(v)),
        Some((&d, rest)) => {
            let items = v
                .as_array()
                .unwrap_or_else(|| panic!("{v} is not an array"));
            assert_eq!(items.len(), d, "{v} does not have the shape {shape:?}");
            items.iter().for_each(|x| flatten(x, rest, out));
        }
    }
}

/// Bit equality, any NaN equal to any NaN.
fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan())
}

fn assert_same(got: &[f64], want: &[f64], what: &str) {
    assert!(same(got, want), "{what}: got {got:?}, want {want:?}");
}

// ---------------------------------------------------------------------------------------------
// Every input path reads doubles correctly rounded.

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// normal(0, 1) by Box-Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Finite doubles: mostly normal(0, 1), then any exponent, subnormals and edge values.
fn test_doubles(n: usize) -> Vec<f64> {
    let mut rng = Rng(8);
    let mut xs = vec![
        -0.0,
        0.0,
        f64::MAX,
        -f64::MAX,
        f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(0x000F_FFFF_FFFF_FFFF),
        0.1,
        1e23,
        f64::from_bits(0x000F_FFFF_FFFF_FFFF),
    ];
    while xs.len() < n {
        let x = match xs.len() % 4 {
            0 | 1 => rng.normal(),
            2 => f64::from_bits(rng.next()),
            _ => f64::from_bits(rng.next() >> 12) * if rng.next() & 1 == 0 { 1.0 } else { -1.0 },
        };
        if x.is_finite() {
            xs.push(x);
        }
    }
    xs
}

/// The doubles as text: `{:?}` is Rust's shortest round-trip form, as Python's repr is.
fn as_list(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| format!("{x:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn as_json_array(xs: &[f64]) -> String {
    format!(
        "[{}]",
        xs.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The significant digits of a decimal: "-1.250e-3" -> "125".
fn digits(t: &str) -> String {
    let mantissa = t.split(['e', 'E']).next().unwrap_or(t);
    let d: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    d.trim_start_matches('0').trim_end_matches('0').to_string()
}

/// The numbers of the flat array after `prefix` in printed output, parsed by Rust's
/// `str::parse` (correctly rounded) rather than by serde_json, so the check does not depend on
/// its features. Each is asserted to be no longer than Rust's shortest round-trip form.
fn printed(stdout: &str, prefix: &str) -> Vec<f64> {
    let start = stdout.find(prefix).expect("the prefix is printed") + prefix.len();
    let end = start + stdout[start..].find(']').expect("a closing bracket");
    let number = |t: &str| {
        let x: f64 = t
            .parse()
            .unwrap_or_else(|_| panic!("{t:?} is not a number"));
        let shortest = format!("{x:?}");
        assert!(
            digits(t).len() <= digits(&shortest).len(),
            "{t} is longer than {shortest}"
        );
        x
    };
    stdout[start..end]
        .split(',')
        .map(|t| number(t.trim()))
        .collect()
}

#[test]
fn doubles_read_back_bit_for_bit_through_every_input_path() {
    const N: usize = 2000;
    let xs = test_doubles(N);
    let s = Scratch::new("values");
    let ir = s.write(
        "nn.ir",
        &format!(
            "func @nn(x: f64[{N}]) -> (f64[{N}]) {{\n    a: f64[{N}] = neg x\n    \
             b: f64[{N}] = neg a\n    return b\n}}\n"
        ),
    );
    let list = format!("x={}", as_list(&xs));
    let file = format!("x={}", s.write("x.json", &as_json_array(&xs)));
    let all = s.write("all.json", &format!("{{\"x\": {}}}", as_json_array(&xs)));
    for args in [
        vec!["-i", list.as_str()],
        vec!["-i", file.as_str()],
        vec!["--inputs", all],
    ] {
        let mut cmd = vec!["eval", ir];
        cmd.extend(&args);
        // The text form prints the same numbers, and they parse back just as exactly.
        let text = ok_stdout(&s.0, &cmd);
        cmd.push("--json");
        let out = ok_stdout(&s.0, &cmd);
        assert_same(
            &printed(&out, r#"{"outputs":[["#),
            &xs,
            &format!("{args:?}"),
        );
        assert_same(&printed(&text, " = ["), &xs, "the text output");
    }
}

#[test]
fn hvp_directions_read_back_bit_for_bit() {
    const N: usize = 1000;
    // Halved so that 2 v stays finite.
    let vs: Vec<f64> = test_doubles(N).iter().map(|v| v / 2.0).collect();
    let twice: Vec<f64> = vs.iter().map(|v| 2.0 * v).collect();
    let s = Scratch::new("values");
    let ir = s.write(
        "sq.ir",
        &format!(
            "func @sq(x: f64[{N}]) -> (f64[]) {{\n    a: f64[{N}] = mul x, x\n    \
             s: f64[] = reduce_sum a [axes=[0]]\n    return s\n}}\n"
        ),
    );
    let list = format!("x={}", as_list(&vs));
    let file = format!("x={}", s.write("v.json", &as_json_array(&vs)));
    let all = s.write("vs.json", &format!("{{\"x\": {}}}", as_json_array(&vs)));
    for args in [
        ["--v", list.as_str()],
        ["--v", file.as_str()],
        ["--vs", all],
    ] {
        let mut cmd = vec!["hvp", ir, "--json"];
        cmd.extend(args);
        let out = ok_stdout(&s.0, &cmd);
        assert_same(
            &printed(&out, r#""hvp":{"x":["#),
            &twice,
            &format!("{args:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The same rules on every path; bools; duplicate keys; directions not given.

const BOOLS: &str = "func @b(m: bool[3], s: bool[]) -> (bool[3], bool[]) {\n    return m, s\n}\n";

#[test]
fn bool_inputs_take_the_same_values_on_every_path() {
    let s = Scratch::new("values");
    let ir = s.write("b.ir", BOOLS);
    let want = "a bool input takes true, false, 0 or 1";
    fails(&s.0, &["eval", ir, "-i", "m=2,nan,-1"], want);
    fails(
        &s.0,
        &["eval", ir, "-i", "m=0,nan,1"],
        "input 'm', element 1: a bool",
    );
    let m = s.write("m.json", r#"[0, "nan", 1]"#);
    fails(
        &s.0,
        &["eval", ir, "-i", &format!("m={m}")],
        "element 1: a bool",
    );
    let all = s.write("all.json", r#"{"m": [2, 0, 1]}"#);
    fails(
        &s.0,
        &["eval", ir, "--inputs", all],
        "all.json: input 'm', element 0: a bool",
    );
    fails(&s.0, &["eval", ir, "-i", "s=0.5"], want);
    let j = ok_json(
        &s.0,
        &["eval", ir, "-i", "m=true,0,1", "-i", "s=1", "--json"],
    );
    assert_eq!(j, json!({"outputs": [[true, false, true], true]}));
    let all = s.write("ok.json", r#"{"m": [true, 0, 1.0], "s": false}"#);
    let j = ok_json(&s.0, &["eval", ir, "--inputs", all, "--json"]);
    assert_eq!(j, json!({"outputs": [[true, false, true], false]}));
}

#[test]
fn f64_inputs_take_the_same_spellings_on_every_path() {
    let s = Scratch::new("values");
    let ir = s.write(
        "id.ir",
        "func @id(x: f64[3]) -> (f64[3]) {\n    return x\n}\n",
    );
    let want = json!({"outputs": [["NaN", "Infinity", "-Infinity"]]});
    let j = ok_json(&s.0, &["eval", ir, "-i", "x=nan,inf,-Infinity", "--json"]);
    assert_eq!(j, want);
    let x = s.write("x.json", r#"["nan", "inf", "-Infinity"]"#);
    let j = ok_json(&s.0, &["eval", ir, "-i", &format!("x={x}"), "--json"]);
    assert_eq!(j, want);
    fails(
        &s.0,
        &["eval", ir, "-i", "x=1,2,true"],
        "element 2: an f64 input takes numbers",
    );
    let x = s.write("t.json", "[1, 2, true]");
    fails(
        &s.0,
        &["eval", ir, "-i", &format!("x={x}")],
        "element 2: an f64 input takes numbers",
    );
    fails(
        &s.0,
        &["eval", ir, "-i", "x=1,2,INF"],
        "element 2: 'INF' is not a number",
    );
    // In JSON, a string not among the spellings is named as a string.
    let x = s.write("i.json", r#"[1, 2, "INF"]"#);
    fails(
        &s.0,
        &["eval", ir, "-i", &format!("x={x}")],
        "element 2: \"INF\" is a string where a number is expected",
    );
}

#[test]
fn bools_print_as_true_and_false_as_scalars_and_arrays() {
    let s = Scratch::new("values");
    let ir = s.write("b.ir", BOOLS);
    let text = ok_stdout(&s.0, &["eval", ir, "-i", "m=1,0,1", "-i", "s=0"]);
    assert_eq!(
        text,
        "0: bool[3] = [true, false, true]\n1: bool[] = false\n"
    );
}

#[test]
fn duplicate_keys_in_an_input_object_are_refused() {
    let s = Scratch::new("values");
    let ir = s.write("b.ir", BOOLS);
    let dup = s.write("dup.json", r#"{"m": [1, 1, 1], "s": 0, "m": [0, 0, 0]}"#);
    fails(
        &s.0,
        &["eval", ir, "--inputs", dup],
        "dup.json: the key 'm' is given twice",
    );
    let sq = s.write(
        "sq.ir",
        "func @sq(x: f64[]) -> (f64[]) {\n    y: f64[] = mul x, x\n    return y\n}\n",
    );
    let dup = s.write("v.json", r#"{"x": 1, "x": 2}"#);
    fails(
        &s.0,
        &["hvp", sq, "--vs", dup],
        "v.json: the key 'x' is given twice",
    );
}

#[test]
fn a_non_finite_spelling_is_a_value_even_where_a_file_has_its_name() {
    let s = Scratch::new("values");
    let ir = s.write(
        "id.ir",
        "func @id(x: f64[]) -> (f64[]) {\n    y: f64[] = add x, x\n    return y\n}\n",
    );
    for (word, printed) in [
        ("inf", "inf"),
        ("-inf", "-inf"),
        ("nan", "NaN"),
        ("NaN", "NaN"),
        ("Infinity", "inf"),
        ("-Infinity", "-inf"),
    ] {
        // A file of the same name that, if read, would give 1.
        s.write(word, "1");
        let out = ok_stdout(&s.0, &["eval", ir, "-i", &format!("x={word}")]);
        assert_eq!(out.trim(), format!("0: f64[] = {printed}"), "x={word}");
    }
}

#[test]
fn strings_and_objects_where_values_belong_are_named_as_such() {
    let s = Scratch::new("values");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("ir/models/tiny.ir");
    let tiny = s.write("tiny.ir", &std::fs::read_to_string(shipped).unwrap());
    let string = s.write("string.json", r#"{"x": [1, "2"]}"#);
    fails(
        &s.0,
        &["eval", tiny, "--inputs", string],
        "input 'x', element 1: \"2\" is a string where a number is expected",
    );
    let object = s.write("object.json", r#"{"x": {"a": 1}}"#);
    fails(
        &s.0,
        &["eval", tiny, "--inputs", object],
        "object.json: input 'x': expected a number or an array, found an object",
    );
    // An --inputs file given to -i: the object, and where it belongs.
    let ok = format!("x={}", s.write("ok.json", r#"{"x": [1, 2]}"#));
    fails(
        &s.0,
        &["eval", tiny, "-i", &ok],
        "ok.json: input 'x': expected a number or an array, found an object \
         (an object of several values keyed by name is given with --inputs ok.json)",
    );
    fails(
        &s.0,
        &["hvp", tiny, "--v", &ok],
        "is given with --vs ok.json",
    );
    // The non-finite spellings are the strings taken.
    let words = s.write("words.json", r#"{"x": ["nan", 2]}"#);
    let j = ok_json(&s.0, &["eval", tiny, "--inputs", words, "--json"]);
    assert_eq!(j["outputs"][0], "NaN", "{j}");
}

#[test]
fn a_value_given_twice_is_refused() {
    let s = Scratch::new("values");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("ir/models/tiny.ir");
    let tiny = s.write("tiny.ir", &std::fs::read_to_string(shipped).unwrap());
    let a = s.write("a.json", r#"{"x": [1, 2]}"#);
    let b = s.write("b.json", r#"{"x": [3, 4]}"#);
    for (args, want) in [
        (
            &["eval", tiny, "-i", "x=1,2", "-i", "x=3,4"][..],
            "input 'x' is given twice (in 'x=1,2' and 'x=3,4')",
        ),
        (
            &["eval", tiny, "--inputs", a, "--inputs", b],
            "input 'x' is given twice (in a.json and b.json)",
        ),
        (
            &["grad", tiny, "--inputs", a, "-i", "x=3,4"],
            "input 'x' is given twice (in a.json and 'x=3,4')",
        ),
        (
            &["hvp", tiny, "--v", "x=1,0", "--v", "x=0,1"],
            "direction 'x' is given twice (in 'x=1,0' and 'x=0,1')",
        ),
        (
            &["hvp", tiny, "--vs", a, "--v", "x=0,1"],
            "direction 'x' is given twice (in a.json and 'x=0,1')",
        ),
    ] {
        fails(&s.0, args, want);
    }
    // An input and a direction of the same name are different values.
    let j = ok_json(
        &s.0,
        &["hvp", tiny, "--inputs", a, "--v", "x=0,1", "--json"],
    );
    assert!(j["hvp"]["x"].is_array(), "{j}");
}

#[test]
fn inputs_given_no_direction_take_zero() {
    let s = Scratch::new("values");
    let ir = s.write(
        "ab.ir",
        "func @ab(a: f64[], b: f64[]) -> (f64[]) {\n    p: f64[] = mul a, b\n    return p\n}\n",
    );
    // H = [[0, 1], [1, 0]], so H (1, 0) = (0, 1) exactly when b's direction is zero.
    let j = ok_json(
        &s.0,
        &["hvp", ir, "-i", "a=3", "-i", "b=5", "--v", "a=1", "--json"],
    );
    assert_eq!(j["hvp"], json!({"a": 0.0, "b": 1.0}));
}

// ---------------------------------------------------------------------------------------------
// Property: every printed output reads back through --inputs and the list form, bit for bit.

#[derive(Debug, Clone)]
struct Input {
    is_bool: bool,
    shape: Vec<usize>,
    values: Vec<f64>,
}

impl Input {
    fn ty(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let dtype = if self.is_bool { "bool" } else { "f64" };
        format!("{dtype}[{}]", dims.join(","))
    }
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -3.0f64..3.0,
        2 => any::<u64>().prop_map(f64::from_bits),
        1 => (0u64..1 << 52).prop_map(f64::from_bits),
        2 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, f64::MAX, f64::MIN,
            f64::MIN_POSITIVE, f64::EPSILON, 1e300, 1e-300, f64::from_bits(1),
        ]),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let dim = prop_oneof![2 => Just(0usize), 3 => Just(1), 3 => 2usize..=4];
    (any::<bool>(), prop::collection::vec(dim, 0..=4)).prop_flat_map(|(is_bool, shape)| {
        let n: usize = shape.iter().product();
        let value = if is_bool {
            any::<bool>().prop_map(|b| f64::from(u8::from(b))).boxed()
        } else {
            double().boxed()
        };
        prop::collection::vec(value, n).prop_map(move |values| Input {
            is_bool,
            shape: shape.clone(),
            values,
        })
    })
}

/// A function returning its inputs: `neg (neg x)` for f64, `x` itself for bool.
fn identity(inputs: &[Input]) -> String {
    let mut params = Vec::new();
    let (mut body, mut results) = (String::new(), Vec::new());
    for (k, x) in inputs.iter().enumerate() {
        let ty = x.ty();
        params.push(format!("x{k}: {ty}"));
        if x.is_bool {
            results.push(format!("x{k}"));
        } else {
            body += &format!("    a{k}: {ty} = neg x{k}\n    b{k}: {ty} = neg a{k}\n");
            results.push(format!("b{k}"));
        }
    }
    let types: Vec<String> = inputs.iter().map(Input::ty).collect();
    format!(
        "func @id({}) -> ({}) {{\n{body}    return {}\n}}\n",
        params.join(", "),
        types.join(", "),
        results.join(", ")
    )
}

/// `{"x0": ..., "x1": ...}` from printed outputs (or generated values as flat arrays).
fn inputs_object(values: impl Iterator<Item = Json>) -> String {
    let map: serde_json::Map<String, Json> = values
        .enumerate()
        .map(|(k, v)| (format!("x{k}"), v))
        .collect();
    Json::Object(map).to_string()
}

/// The printed outputs of `eval --json`, checked against the shapes and flattened.
fn outputs(j: &Json, inputs: &[Input]) -> Vec<Vec<f64>> {
    let list = j["outputs"].as_array().expect("an outputs list");
    assert_eq!(list.len(), inputs.len());
    list.iter()
        .zip(inputs)
        .map(|(v, x)| {
            let mut flat = Vec::new();
            flatten(v, &x.shape, &mut flat);
            flat
        })
        .collect()
}

/// `-i xK=v1,...` arguments from the text output (`K: TYPE = [[...], ...]` per line).
fn list_args(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let (k, rest) = line.split_once(": ").unwrap();
            let values = rest.split_once(" = ").unwrap().1;
            let bare = values.replace(['[', ']'], "");
            let items: Vec<&str> = bare
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            format!("x{k}={}", items.join(","))
        })
        .collect()
}

fn round_trip(inputs: &[Input]) {
    let s = Scratch::new("values");
    let ir = s.write("id.ir", &identity(inputs));
    let flat = inputs_object(
        inputs
            .iter()
            .map(|x| x.values.iter().map(|&v| number(v)).collect()),
    );
    let first = ok_json(
        &s.0,
        &["eval", ir, "--inputs", s.write("in.json", &flat), "--json"],
    );
    let got = outputs(&first, inputs);
    for (g, x) in got.iter().zip(inputs) {
        assert_same(g, &x.values, &format!("{} through the identity", x.ty()));
    }
    // The printed JSON read back through --inputs prints the same.
    let printed = inputs_object(first["outputs"].as_array().unwrap().iter().cloned());
    let second = ok_json(
        &s.0,
        &[
            "eval",
            ir,
            "--inputs",
            s.write("out.json", &printed),
            "--json",
        ],
    );
    assert_eq!(second, first);
    // The printed text, flattened, read back through -i NAME=v1,... prints the same.
    let text = ok_stdout(&s.0, &["eval", ir, "--inputs", "in.json"]);
    let mut args = vec!["eval", ir, "--json"];
    let lists = list_args(&text);
    for a in &lists {
        args.extend(["-i", a.as_str()]);
    }
    let third = ok_json(&s.0, &args);
    for ((a, b), x) in outputs(&third, inputs).iter().zip(&got).zip(inputs) {
        assert_same(a, b, &format!("{} through the text output", x.ty()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_printed_output_reads_back_bit_for_bit(inputs in prop::collection::vec(input(), 1..=3)) {
        round_trip(&inputs);
    }
}

#[test]
fn empty_and_size_one_shapes_read_back() {
    let shapes: [&[usize]; 7] = [&[3, 0], &[0, 3], &[0], &[2, 0, 1], &[1, 1, 0, 2], &[1], &[]];
    let inputs: Vec<Input> = shapes
        .iter()
        .flat_map(|shape| {
            let n: usize = shape.iter().product();
            [false, true].map(|is_bool| Input {
                is_bool,
                shape: shape.to_vec(),
                values: vec![if is_bool { 1.0 } else { -0.0 }; n],
            })
        })
        .collect();
    round_trip(&inputs);
}
