//! Input and output values of the command line.
//!
//! Inputs: `NAME=v1,v2,...` (flat, row-major; `NAME=` for no elements), `NAME=PATH.json`, or
//! one JSON object of several inputs (`--inputs`); a value given twice, by any two of these, is
//! an error, as is a key given twice in one object. A JSON value is a number, a flat array of
//! the parameter's element count, or nested arrays of exactly its shape (`[[],[],[]]` for
//! `[3,0]`; a flat `[]` is also taken for any type with no elements).
//! Every path checks elements by one rule (`element`): an f64 takes numbers, and the
//! non-finite ones spelled `NaN`/`nan`, `Infinity`/`inf`, `-Infinity`/`-inf` (JSON strings
//! in a file); a bool takes true, false, 0 or 1. Inputs not given take seeded defaults
//! (`adjit::inputs`).
//!
//! Outputs: JSON of the exact shape; non-finite numbers as the strings "NaN", "Infinity" and
//! "-Infinity"; bools as true/false. Numbers print in the shortest form that parses back to
//! the same bits, so every output reads back as an input.

use super::{CliError, CliResult};
use adjit::ir::{DType, Func, Type};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;

/// One assignment argument (`--input`, `--t`, `--v`, `--ct`), split at the first '=': `kind`
/// names what it gives ("input", "tangent", ...) and `label` what goes left of the '='
/// ("NAME", or "RESULT" for a cotangent).
pub fn split_assignment<'a>(
    arg: &'a str,
    kind: &str,
    label: &str,
) -> CliResult<(&'a str, &'a str)> {
    arg.split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| {
            CliError(format!(
                "{kind} '{arg}' is not of the form {label}=VALUES or {label}=PATH.json"
            ))
        })
}

fn read_text(path: &Path) -> CliResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("{}: cannot read the file: {e}", path.display())))
}

/// A JSON error with its place; syntax errors say "invalid JSON".
fn json_error(path: &Path, e: &serde_json::Error) -> CliError {
    let kind = if e.is_data() { "" } else { "invalid JSON: " };
    let (line, col) = (e.line(), e.column());
    let text = e.to_string();
    let message = text
        .strip_suffix(&format!(" at line {line} column {col}"))
        .unwrap_or(&text);
    // serde_json counts columns from 1 but says 0 before a line's first character (an empty
    // file, say); the reader of .ir files counts from 1 throughout.
    let col = col.max(1);
    CliError(format!("{}:{line}:{col}: {kind}{message}", path.display()))
}

fn read_json(path: &Path) -> CliResult<Json> {
    serde_json::from_str(&read_text(path)?).map_err(|e| json_error(path, &e))
}

/// The entries of a JSON object in file order, duplicates kept (a `Map` would drop them).
struct Entries(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a JSON object such as {"x": [1, 2]}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Entries(entries))
    }
}

/// Reads a JSON object of named values, refusing a key given twice.
fn read_object(path: &Path) -> CliResult<Vec<(String, Json)>> {
    let Entries(entries) =
        serde_json::from_str(&read_text(path)?).map_err(|e| json_error(path, &e))?;
    let mut seen = HashSet::new();
    if let Some((key, _)) = entries.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return Err(CliError(format!(
            "{}: the key '{key}' is given twice",
            path.display()
        )));
    }
    Ok(entries)
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// One element as written, before it is checked against the input's dtype.
#[derive(Clone, Copy)]
enum Given<'a> {
    Number(f64),
    Bool(bool),
    Word(&'a str),
}

/// The non-finite spellings an f64 input takes.
fn non_finite(word: &str) -> Option<f64> {
    match word {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn not_a_number(word: &str) -> String {
    if word.parse::<f64>().is_ok() && word.contains(|c: char| c.is_ascii_digit()) {
        format!("'{word}' is out of the range of f64")
    } else {
        format!("'{word}' is not a number (non-finite ones are NaN, inf, -inf)")
    }
}

/// The one rule every input path applies to an element: f64 takes numbers and the non-finite
/// spellings; bool takes true, false, 0 and 1 (stored as 1.0 and 0.0).
fn element(given: Given, dtype: DType) -> Result<f64, String> {
    let not_bool = |shown: String| format!("a bool input takes true, false, 0 or 1, not {shown}");
    match (given, dtype) {
        (Given::Number(x), DType::F64) => Ok(x),
        (Given::Word(w), DType::F64) => non_finite(w).ok_or_else(|| not_a_number(w)),
        (Given::Bool(b), DType::F64) => Err(format!("an f64 input takes numbers, not {b}")),
        (Given::Bool(b), DType::Bool) => Ok(if b { 1.0 } else { 0.0 }),
        (Given::Number(x), DType::Bool) if x == 0.0 || x == 1.0 => Ok(x.abs()),
        (Given::Number(x), DType::Bool) => Err(not_bool(format!("{x}"))),
        (Given::Word(w), DType::Bool) => Err(not_bool(format!("'{w}'"))),
    }
}

/// An element of a `v1,v2,...` list: true/false, a non-finite spelling, or a finite decimal.
fn list_given(item: &str) -> Given<'_> {
    match item {
        "true" => Given::Bool(true),
        "false" => Given::Bool(false),
        _ => match item.parse::<f64>() {
            Ok(x) if x.is_finite() => Given::Number(x),
            _ => Given::Word(item),
        },
    }
}

/// An element of a JSON value. Strings are taken only for the non-finite spellings: any other
/// string (`"2"`, `"true"`) is refused as a string, whatever it spells.
fn json_given(v: &Json, dtype: DType) -> Result<Given<'_>, String> {
    let expected = match dtype {
        DType::F64 => "a number",
        DType::Bool => "true, false, 0 or 1",
    };
    match v {
        Json::Number(n) => n
            .as_f64()
            .map(Given::Number)
            .ok_or_else(|| format!("{n} is not representable as f64")),
        Json::Bool(b) => Ok(Given::Bool(*b)),
        Json::String(s) if non_finite(s).is_some() => Ok(Given::Word(s)),
        Json::String(_) => Err(format!(
            "{v} is a string where {expected} is expected (the only strings taken are the \
             non-finite numbers \"NaN\", \"Infinity\", \"-Infinity\", \"nan\", \"inf\" and \"-inf\")"
        )),
        other => Err(format!("expected {expected}, found {}", kind_of(other))),
    }
}

/// The elements of `v` in row-major order: a flat array of the type's element count, nested
/// arrays of exactly its shape, or a lone value for a one-element type.
fn leaves(v: &Json, ty: Type) -> Result<Vec<&Json>, String> {
    let n = ty.numel();
    match v {
        Json::Array(items) if items.iter().all(|x| !x.is_array()) => {
            if items.len() != n {
                return Err(format!("{} values given, but {ty} holds {n}", items.len()));
            }
            Ok(items.iter().collect())
        }
        Json::Array(_) => nested_leaves(v, ty),
        Json::Object(_) | Json::Null => Err(format!(
            "expected {} or an array, found {}",
            match ty.dtype {
                DType::F64 => "a number",
                DType::Bool => "a bool",
            },
            kind_of(v)
        )),
        _ if n != 1 => Err(format!("one value given, but {ty} holds {n}")),
        scalar => Ok(vec![scalar]),
    }
}

/// Walks nested arrays level by level, checking each level's length against the shape.
fn nested_leaves(v: &Json, ty: Type) -> Result<Vec<&Json>, String> {
    let mut level: Vec<&Json> = vec![v];
    for (axis, &d) in ty.shape.to_vec().iter().enumerate() {
        let mut next = Vec::new();
        for item in level {
            match item {
                Json::Array(xs) if xs.len() == d => next.extend(xs.iter()),
                Json::Array(xs) => {
                    return Err(format!(
                        "axis {axis} has length {} in the nested arrays, but {ty} needs {d}",
                        xs.len()
                    ))
                }
                other => {
                    return Err(format!(
                        "expected an array at depth {axis} for {ty}, found {}",
                        kind_of(other)
                    ))
                }
            }
        }
        level = next;
    }
    Ok(level)
}

/// Converts a JSON value to the flat buffer of a parameter of type `ty`.
pub fn from_json(v: &Json, ty: Type, what: &str) -> CliResult<Vec<f64>> {
    let leaves = leaves(v, ty).map_err(|e| CliError(format!("{what}: {e}")))?;
    leaves
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            json_given(x, ty.dtype)
                .and_then(|g| element(g, ty.dtype))
                .map_err(|e| CliError(format!("{what}, element {i}: {e}")))
        })
        .collect()
}

/// Parses `v1,v2,...` (or nothing, for no elements) for a parameter of type `ty`.
fn from_list(text: &str, ty: Type, what: &str) -> CliResult<Vec<f64>> {
    let items: Vec<&str> = match text.trim() {
        "" => Vec::new(),
        _ => text.split(',').map(str::trim).collect(),
    };
    let out = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            element(list_given(item), ty.dtype)
                .map_err(|e| CliError(format!("{what}, element {i}: {e}")))
        })
        .collect::<CliResult<Vec<f64>>>()?;
    if out.len() != ty.numel() {
        return Err(CliError(format!(
            "{what}: {} values given, but {ty} holds {}",
            out.len(),
            ty.numel()
        )));
    }
    Ok(out)
}

/// Named slots that values can be given for: a function's inputs, or an hvp's directions.
pub struct Slots<'a> {
    /// What the slots are called in messages ("input", "direction").
    pub kind: &'a str,
    pub func: &'a str,
    pub slots: Vec<(String, Type)>,
    /// The flag that takes a JSON object of several of them keyed by name, if any.
    pub objects_flag: Option<&'a str>,
    /// What names a slot left of the '=' in messages ("NAME", or "RESULT").
    pub label: &'a str,
    /// Inputs of the function that have no slot because they are not differentiated (data, or
    /// left out of `--wrt`): a message naming one says so.
    pub undifferentiated: Vec<String>,
}

impl Slots<'_> {
    /// The inputs of `f`.
    pub fn inputs(f: &Func) -> Slots<'_> {
        Slots {
            kind: "input",
            func: &f.name,
            slots: f.params.iter().map(|p| (p.name.clone(), p.ty)).collect(),
            objects_flag: Some("--inputs"),
            label: "NAME",
            undifferentiated: Vec::new(),
        }
    }

    fn index(&self, name: &str, source: &str) -> CliResult<usize> {
        self.slots
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.slots.iter().map(|(n, _)| n.as_str()).collect();
                let hint = if self.undifferentiated.iter().any(|n| n == name) {
                    format!(
                        "; '{name}' is an input that is not differentiated (data, or left out of --wrt): name it in --wrt to give it a {}",
                        self.kind
                    )
                } else {
                    String::new()
                };
                CliError(format!(
                    "{source}: @{} has no {} '{name}' (it has: {}){hint}",
                    self.func,
                    self.kind,
                    names.join(", ")
                ))
            })
    }
}

/// Fills `values` (one buffer per slot, prefilled with defaults) from JSON object files and
/// `NAME=...` assignments, in that order. A slot given twice, anywhere, is an error.
pub fn apply_values(
    slots: &Slots,
    values: &mut [Vec<f64>],
    files: &[String],
    assignments: &[String],
) -> CliResult<()> {
    let kind = slots.kind;
    // Where each slot was given, as messages name it.
    let mut given: Vec<Option<String>> = vec![None; slots.slots.len()];
    let mut mark = |i: usize, source: String| match &given[i] {
        Some(first) => Err(CliError(format!(
            "{kind} '{}' is given twice (in {first} and {source})",
            slots.slots[i].0
        ))),
        None => {
            given[i] = Some(source);
            Ok(())
        }
    };
    for file in files {
        for (name, v) in read_object(Path::new(file))? {
            let i = slots.index(&name, file)?;
            mark(i, file.clone())?;
            values[i] = from_json(&v, slots.slots[i].1, &format!("{file}: {kind} '{name}'"))?;
        }
    }
    for arg in assignments {
        let (name, value) = split_assignment(arg, kind, slots.label)?;
        let i = slots.index(name, &format!("{kind} '{arg}'"))?;
        mark(i, format!("'{arg}'"))?;
        let what = format!("{kind} '{name}'");
        values[i] = assigned(value, slots.slots[i].1, &what, slots.objects_flag)?;
    }
    Ok(())
}

/// The value of one `NAME=VALUE` assignment: a list, unless it names a file. A list whose
/// every element is one the element rule knows (numbers, bools, the non-finite spellings) is
/// never a file name, even if a file of that name exists.
/// A file holding an object (of several values, keyed by name) is refused with a hint at
/// `objects_flag`, the flag that takes one.
fn assigned(value: &str, ty: Type, what: &str, objects_flag: Option<&str>) -> CliResult<Vec<f64>> {
    let looks_like_list = value.split(',').all(|x| match list_given(x.trim()) {
        Given::Word(w) => non_finite(w).is_some(),
        Given::Number(_) | Given::Bool(_) => true,
    });
    let is_file = Path::new(value).exists() || value.ends_with(".json");
    // One word that is no value and no file (an empty value is the empty list).
    if !looks_like_list && !is_file && !value.contains(',') && !value.trim().is_empty() {
        Err(CliError(format!(
            "{what}: '{value}' is neither a value (a number, NaN, inf, -inf, true, false) nor an existing file"
        )))
    } else if looks_like_list || !is_file {
        from_list(value, ty, what)
    } else {
        let json = read_json(Path::new(value))?;
        let what = format!("{value}: {what}");
        match (&json, objects_flag) {
            (Json::Object(_), Some(flag)) => Err(CliError(format!(
                "{what}: expected a number or an array, found an object (an object of several \
                 values keyed by name is given with {flag} {value})"
            ))),
            _ => from_json(&json, ty, &what),
        }
    }
}

/// A number as JSON: non-finite values as strings.
pub fn number_json(x: f64) -> Json {
    match serde_json::Number::from_f64(x) {
        Some(n) => Json::Number(n),
        None if x.is_nan() => Json::String("NaN".into()),
        None if x > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// Zero-element values whose nested form would hold more arrays than this print as `[]`.
const MAX_EMPTY_ARRAYS: usize = 1 << 20;

/// How many arrays the nested form of `shape` holds (saturating).
fn array_count(shape: &[usize]) -> usize {
    (0..shape.len())
        .map(|axis| {
            shape[..axis]
                .iter()
                .fold(1usize, |a, &d| a.saturating_mul(d))
        })
        .fold(0, usize::saturating_add)
}

/// One element as JSON: a bool for a bool type, else a number.
fn element_json(x: f64, dtype: DType) -> Json {
    match dtype {
        DType::Bool => Json::Bool(x != 0.0),
        DType::F64 => number_json(x),
    }
}

/// A flat buffer as JSON of the type's shape: a lone value for a scalar, nested arrays of
/// exactly the shape otherwise (`[[],[],[]]` for `[3,0]`).
pub fn to_json(data: &[f64], ty: Type) -> Json {
    let shape = ty.shape.to_vec();
    if data.is_empty() && array_count(&shape) > MAX_EMPTY_ARRAYS {
        return Json::Array(Vec::new());
    }
    // Build bottom-up: the innermost axis groups the elements, each outer axis the groups.
    let mut level: Vec<Json> = data.iter().map(|&x| element_json(x, ty.dtype)).collect();
    for axis in (0..shape.len()).rev() {
        let groups: usize = shape[..axis].iter().product();
        let mut items = level.into_iter();
        level = (0..groups)
            .map(|_| Json::Array(items.by_ref().take(shape[axis]).collect()))
            .collect();
    }
    level.pop().unwrap_or(Json::Array(Vec::new()))
}

/// A flat buffer as readable text: the JSON form without quotes around non-finite numbers.
pub fn to_text(data: &[f64], ty: Type) -> String {
    let json = to_json(data, ty).to_string();
    json.replace("\"NaN\"", "NaN")
        .replace("\"-Infinity\"", "-inf")
        .replace("\"Infinity\"", "inf")
        .replace(',', ", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes_round_trip() {
        let ty = Type::f64(&[2, 3]);
        let data = vec![1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN];
        let j = to_json(&data, ty);
        assert_eq!(j.to_string(), "[[1.0,2.0,3.0],[4.0,5.0,\"NaN\"]]");
        let back = from_json(&j, ty, "x").unwrap();
        assert_eq!(back[..5], data[..5]);
        assert!(back[5].is_nan());
        let flat: Json = serde_json::from_str("[1,2,3,4,5,6]").unwrap();
        assert_eq!(
            from_json(&flat, ty, "x").unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        let bad: Json = serde_json::from_str("[[1,2],[3,4],[5,6]]").unwrap();
        let e = from_json(&bad, ty, "x").unwrap_err().0;
        assert!(e.contains("axis 0 has length 3"), "{e}");
        assert_eq!(to_json(&[2.5], Type::scalar()).to_string(), "2.5");
    }

    fn parse(text: &str) -> Json {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn empty_shapes_print_exactly_and_read_back() {
        for (shape, printed) in [
            (&[3, 0][..], "[[],[],[]]"),
            (&[0, 3], "[]"),
            (&[0], "[]"),
            (&[2, 0, 4], "[[],[]]"),
            (&[1, 2, 0], "[[[],[]]]"),
            (&[2, 1, 0, 2], "[[[]],[[]]]"),
        ] {
            for ty in [Type::f64(shape), Type::bool(shape)] {
                let j = to_json(&[], ty);
                assert_eq!(j.to_string(), printed, "{ty}");
                assert_eq!(from_json(&j, ty, "x").unwrap(), Vec::<f64>::new(), "{ty}");
                // A flat [] is taken for any type with no elements.
                assert!(from_json(&parse("[]"), ty, "x").unwrap().is_empty(), "{ty}");
            }
        }
        let e = from_json(&parse("[[]]"), Type::f64(&[3, 0]), "x")
            .unwrap_err()
            .0;
        assert!(e.contains("axis 0 has length 1"), "{e}");
        let e = from_json(&parse("[[],[]]"), Type::f64(&[2, 1]), "x")
            .unwrap_err()
            .0;
        assert!(e.contains("axis 1 has length 0"), "{e}");
    }

    #[test]
    fn a_huge_empty_shape_prints_flat() {
        let ty = Type::f64(&[100_000, 100_000, 0]);
        assert_eq!(to_json(&[], ty).to_string(), "[]");
        assert!(from_json(&parse("[]"), ty, "x").unwrap().is_empty());
        let e = from_json(&parse("[[]]"), ty, "x").unwrap_err().0;
        assert!(e.contains("axis 0 has length 1"), "{e}");
    }

    #[test]
    fn bools_print_as_true_and_false_in_every_form() {
        assert_eq!(to_json(&[1.0], Type::bool(&[])).to_string(), "true");
        assert_eq!(to_json(&[0.0], Type::bool(&[])).to_string(), "false");
        assert_eq!(to_text(&[1.0], Type::bool(&[])), "true");
        let ty = Type::bool(&[2, 1]);
        assert_eq!(to_json(&[0.0, 1.0], ty).to_string(), "[[false],[true]]");
        assert_eq!(to_text(&[0.0, 1.0], ty), "[[false], [true]]");
    }

    /// What the list form and the JSON form make of the same elements.
    fn both(list: &str, json: &str, ty: Type) -> [Result<Vec<f64>, String>; 2] {
        [
            from_list(list, ty, "x").map_err(|e| e.0),
            from_json(&parse(json), ty, "x").map_err(|e| e.0),
        ]
    }

    #[test]
    fn list_and_json_apply_the_same_rules() {
        let b3 = Type::bool(&[3]);
        for [list, json] in [
            ["2,nan,-1", "[2,\"nan\",-1]"],
            ["1,0,0.5", "[1,0,0.5]"],
            ["0,nan,1", "[0,\"nan\",1]"],
        ] {
            for r in both(list, json, b3) {
                let e = r.unwrap_err();
                assert!(e.contains("a bool input takes true, false, 0 or 1"), "{e}");
            }
        }
        for r in both("true,0,-0", "[true,0,-0.0]", b3) {
            let v = r.unwrap();
            assert_eq!(
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                [1.0f64.to_bits(), 0, 0]
            );
        }
        let f3 = Type::f64(&[3]);
        for r in both("NaN,inf,-Infinity", "[\"NaN\",\"inf\",\"-Infinity\"]", f3) {
            let v = r.unwrap();
            assert!(v[0].is_nan() && v[1] == f64::INFINITY && v[2] == f64::NEG_INFINITY);
        }
        for r in both("1,true,2", "[1,true,2]", f3) {
            let e = r.unwrap_err();
            assert!(
                e.contains("element 1: an f64 input takes numbers, not true"),
                "{e}"
            );
        }
        let [list, json] = both("1,2,Inf", "[1,2,\"Inf\"]", f3);
        let e = list.unwrap_err();
        assert!(e.contains("element 2: 'Inf' is not a number"), "{e}");
        let e = json.unwrap_err();
        assert!(
            e.contains("element 2: \"Inf\" is a string where a number is expected"),
            "{e}"
        );
        assert!(from_list("", Type::f64(&[0, 2]), "x").unwrap().is_empty());
        let e = from_list("1e400", Type::scalar(), "x").unwrap_err().0;
        assert!(e.contains("out of the range of f64"), "{e}");
    }
}
