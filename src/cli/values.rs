//! Input and output values of the command line.
//!
//! Inputs: `NAME=v1,v2,...` (flat, row-major), `NAME=PATH.json`, or one JSON object of several
//! inputs (`--inputs`). A JSON value is a number, a flat array of the parameter's element count,
//! or nested arrays of exactly its shape. Non-finite numbers are written as the strings "NaN",
//! "Infinity" and "-Infinity" (JSON has no literal for them); bools as true/false or 0/1.
//! Inputs not given take seeded defaults (`adjit::inputs`).

use super::{CliError, CliResult};
use adjit::ir::{DType, Func, Type};
use serde_json::Value as Json;
use std::path::Path;

/// One `--input` argument, split at the first '='.
pub fn split_assignment(arg: &str) -> CliResult<(&str, &str)> {
    arg.split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| {
            CliError(format!(
                "input '{arg}' is not of the form NAME=VALUES or NAME=PATH.json"
            ))
        })
}

fn read_json(path: &Path) -> CliResult<Json> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("{}: cannot read the file: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError(format!(
            "{}:{}:{}: invalid JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

fn json_number(v: &Json, ty: Type, what: &str) -> CliResult<f64> {
    match v {
        Json::Number(n) => {
            let x = n
                .as_f64()
                .ok_or_else(|| CliError(format!("{what}: {n} is not representable as f64")))?;
            if ty.dtype == DType::Bool && x != 0.0 && x != 1.0 {
                return Err(CliError(format!(
                    "{what}: a bool input takes true, false, 0 or 1, not {x}"
                )));
            }
            Ok(x)
        }
        Json::Bool(b) if ty.dtype == DType::Bool => Ok(if *b { 1.0 } else { 0.0 }),
        Json::String(s) if ty.dtype == DType::F64 => match s.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "Infinity" | "inf" => Ok(f64::INFINITY),
            "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
            _ => Err(CliError(format!(
                "{what}: expected a number, found the string {s:?}"
            ))),
        },
        other => Err(CliError(format!(
            "{what}: expected a number, found {}",
            kind_of(other)
        ))),
    }
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

/// Converts a JSON value to the flat buffer of a parameter of type `ty`.
pub fn from_json(v: &Json, ty: Type, what: &str) -> CliResult<Vec<f64>> {
    let n = ty.numel();
    let shape = ty.shape.to_vec();
    match v {
        Json::Array(items) if items.iter().all(|x| !x.is_array()) => {
            if items.len() != n {
                return Err(CliError(format!(
                    "{what}: {} values given, but {ty} holds {n}",
                    items.len()
                )));
            }
            items.iter().map(|x| json_number(x, ty, what)).collect()
        }
        Json::Array(_) => {
            // Nested: walk it level by level (no recursion), checking each level's length.
            let mut level: Vec<&Json> = vec![v];
            for (axis, &d) in shape.iter().enumerate() {
                let mut next = Vec::with_capacity(level.len() * d);
                for item in level {
                    match item {
                        Json::Array(xs) if xs.len() == d => next.extend(xs.iter()),
                        Json::Array(xs) => {
                            return Err(CliError(format!(
                                "{what}: axis {axis} has length {} in the nested arrays, but {ty} needs {d}",
                                xs.len()
                            )))
                        }
                        other => return Err(CliError(format!("{what}: expected an array at depth {axis} for {ty}, found {}", kind_of(other)))),
                    }
                }
                level = next;
            }
            level
                .into_iter()
                .map(|x| json_number(x, ty, what))
                .collect()
        }
        scalar => {
            if n != 1 {
                return Err(CliError(format!(
                    "{what}: one number given, but {ty} holds {n}"
                )));
            }
            Ok(vec![json_number(scalar, ty, what)?])
        }
    }
}

/// Parses `v1,v2,...` for a parameter of type `ty`.
fn from_list(text: &str, ty: Type, what: &str) -> CliResult<Vec<f64>> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let x = match (item, ty.dtype) {
            ("true", DType::Bool) => 1.0,
            ("false", DType::Bool) => 0.0,
            _ => item.parse::<f64>().map_err(|_| {
                CliError(format!(
                    "{what}: '{item}' is not a number (and '{text}' is not a .json file)"
                ))
            })?,
        };
        out.push(x);
    }
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
}

impl Slots<'_> {
    /// The inputs of `f`.
    pub fn inputs(f: &Func) -> Slots<'_> {
        Slots {
            kind: "input",
            func: &f.name,
            slots: f.params.iter().map(|p| (p.name.clone(), p.ty)).collect(),
        }
    }

    fn index(&self, name: &str, source: &str) -> CliResult<usize> {
        self.slots
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.slots.iter().map(|(n, _)| n.as_str()).collect();
                CliError(format!(
                    "{source}: @{} has no {} '{name}' (it has: {})",
                    self.func,
                    self.kind,
                    names.join(", ")
                ))
            })
    }
}

/// Fills `values` (one buffer per slot, prefilled with defaults) from JSON object files and
/// `NAME=...` assignments, in that order.
pub fn apply_values(
    slots: &Slots,
    values: &mut [Vec<f64>],
    files: &[String],
    assignments: &[String],
) -> CliResult<()> {
    let kind = slots.kind;
    for file in files {
        let path = Path::new(file);
        let json = read_json(path)?;
        let Json::Object(map) = json else {
            return Err(CliError(format!(
                "{file}: expected a JSON object of {kind}s such as {{\"x\": [1, 2]}}, found {}",
                kind_of(&json)
            )));
        };
        for (name, v) in &map {
            let i = slots.index(name, file)?;
            values[i] = from_json(v, slots.slots[i].1, &format!("{file}: {kind} '{name}'"))?;
        }
    }
    for arg in assignments {
        let (name, value) = split_assignment(arg)?;
        let i = slots.index(name, &format!("{kind} '{arg}'"))?;
        let ty = slots.slots[i].1;
        let what = format!("{kind} '{name}'");
        let looks_numeric = value.split(',').all(|x| {
            let x = x.trim();
            x.parse::<f64>().is_ok() || (ty.dtype == DType::Bool && (x == "true" || x == "false"))
        });
        values[i] = if looks_numeric || !Path::new(value).exists() && !value.ends_with(".json") {
            from_list(value, ty, &what)?
        } else {
            let json = read_json(Path::new(value))?;
            from_json(&json, ty, &format!("{value}: {what}"))?
        };
    }
    Ok(())
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

/// A flat buffer as JSON of the type's shape: a number for a scalar, nested arrays otherwise.
pub fn to_json(data: &[f64], ty: Type) -> Json {
    let shape = ty.shape.to_vec();
    if shape.is_empty() {
        return number_json(data[0]);
    }
    // Build bottom-up: group the innermost axis first.
    let mut level: Vec<Json> = data
        .iter()
        .map(|&x| {
            if ty.dtype == DType::Bool {
                Json::Bool(x != 0.0)
            } else {
                number_json(x)
            }
        })
        .collect();
    for &d in shape.iter().rev() {
        if d == 0 {
            level = vec![Json::Array(Vec::new()); level.len().max(1)];
            continue;
        }
        let mut it = level.into_iter();
        let mut next = Vec::new();
        loop {
            let chunk: Vec<Json> = it.by_ref().take(d).collect();
            if chunk.is_empty() {
                break;
            }
            next.push(Json::Array(chunk));
        }
        level = next;
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
}
