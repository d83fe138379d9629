//! JSON ↔ component values ([`Val`]), the mapping [`crate::schema`] describes.
//!
//! Arguments arrive as a JSON object keyed by the WIT parameter names and are checked
//! against the function's types: every mismatch is a [`ConvertError`] naming the JSON path
//! (`city`, `options.max-results`, `items[2]`, `shape.val`), the expected type and what
//! was given. Nothing is coerced silently: integers are range-checked, a float with a
//! fraction is not an integer, a string is not a number.
//!
//! Decisions worth knowing:
//! - Floats: NaN and ±infinity have no JSON number, so [`val_to_json`] writes the strings
//!   `"NaN"`, `"Infinity"` and `"-Infinity"` (the protobuf JSON convention), and
//!   [`json_to_val`] accepts those strings for `f32`/`f64`. A finite number too large for
//!   an `f32` is an error, not infinity.
//! - Integers: `2.0` is accepted for an integer type (JSON does not distinguish), `2.5` is
//!   not. `u64` and `s64` are written as exact JSON numbers; clients that parse numbers
//!   as doubles (JavaScript) lose precision above 2^53.
//! - Options: `null` is `none`. For a nested `option<option<T>>` JSON cannot tell
//!   `none` from `some(none)`: `null` reads as the outer `none`, and `some(none)` is
//!   written as `null`.
//! - Flags are read in any order (duplicates ignored) and written in declaration order.
//!
//! This module only converts values; it never calls into a guest.

use std::fmt;

use serde_json::{Map, Value};
use wasmtime::component::{Type, Val};

/// A JSON value that does not fit the WIT type it is meant for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", Where(path))]
pub struct ConvertError {
    /// JSON path of the offending value: `city`, `options.max-results`, `items[2]`,
    /// `shape.val`; empty for the arguments object itself.
    pub path: String,
    /// What was expected and what was given: `expected u8 (0..=255), got 300`.
    pub message: String,
}

struct Where<'a>(&'a str);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("arguments")
        } else {
            write!(f, "argument \"{}\"", self.0)
        }
    }
}

/// Converts a tool's JSON arguments to the values of the function's parameters, in order.
///
/// `args` must be an object keyed by the parameter names; with no parameters, `null` and
/// `{}` are accepted too. A missing `option` parameter (or record field) is `none`; any
/// other missing parameter, and an unknown key, is an error.
pub fn args_from_json(args: &Value, params: &[(String, Type)]) -> Result<Vec<Val>, ConvertError> {
    let empty = Map::new();
    let object = match args {
        Value::Object(object) => object,
        Value::Null if params.is_empty() => &empty,
        other => {
            let names = names(params.iter().map(|(name, _)| name.as_str()));
            let expected = if params.is_empty() {
                "no arguments (an empty object)".to_owned()
            } else {
                format!("an object with the parameters {names}")
            };
            return Err(error(
                Path::Root(""),
                format!("expected {expected}, got {}", given(other)),
            ));
        }
    };
    let param_names = || names(params.iter().map(|(name, _)| name.as_str()));
    if let Some(key) = object
        .keys()
        .find(|key| !params.iter().any(|(name, _)| name == *key))
    {
        let message = if params.is_empty() {
            format!("unknown parameter \"{key}\"; this tool takes no arguments")
        } else {
            format!(
                "unknown parameter \"{key}\" (parameters: {})",
                param_names()
            )
        };
        return Err(error(Path::Root(""), message));
    }
    params
        .iter()
        .map(|(name, ty)| match object.get(name) {
            Some(value) => convert(value, ty, Path::Root(name)),
            None if matches!(ty, Type::Option(_)) => Ok(Val::Option(None)),
            None => Err(error(
                Path::Root(""),
                format!(
                    "missing parameter \"{name}\" (parameters: {})",
                    param_names()
                ),
            )),
        })
        .collect()
}

/// Converts one JSON value to a value of type `ty`; `path` names it in errors (may be
/// empty).
pub fn json_to_val(value: &Value, ty: &Type, path: &str) -> Result<Val, ConvertError> {
    convert(value, ty, Path::Root(path))
}

/// Converts a component value to JSON, the inverse of [`json_to_val`].
///
/// Resources, futures, streams and error-contexts (which tools never return, see
/// [`crate::schema::Unsupported`]) become the placeholders `"<resource>"`, `"<future>"`,
/// `"<stream>"`, `"<error-context>"`.
pub fn val_to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => (*n).into(),
        Val::U8(n) => (*n).into(),
        Val::S16(n) => (*n).into(),
        Val::U16(n) => (*n).into(),
        Val::S32(n) => (*n).into(),
        Val::U32(n) => (*n).into(),
        Val::S64(n) => (*n).into(),
        Val::U64(n) => (*n).into(),
        Val::Float32(x) => float_to_json(f64::from(*x)),
        Val::Float64(x) => float_to_json(*x),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(val_to_json).collect())
        }
        Val::Map(entries) => entries
            .iter()
            .map(|(k, v)| pair("key", val_to_json(k), "value", val_to_json(v)))
            .collect(),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), val_to_json(v)))
                .collect(),
        ),
        Val::Variant(tag, payload) => {
            let mut object = Map::new();
            object.insert("tag".into(), Value::String(tag.clone()));
            if let Some(payload) = payload {
                object.insert("val".into(), val_to_json(payload));
            }
            Value::Object(object)
        }
        Val::Enum(case) => Value::String(case.clone()),
        Val::Flags(set) => set.iter().map(|f| Value::String(f.clone())).collect(),
        Val::Option(inner) => inner.as_deref().map_or(Value::Null, val_to_json),
        Val::Result(Ok(v)) => single("ok", v.as_deref().map_or(Value::Null, val_to_json)),
        Val::Result(Err(v)) => single("err", v.as_deref().map_or(Value::Null, val_to_json)),
        Val::Resource(_) => "<resource>".into(),
        Val::Future(_) => "<future>".into(),
        Val::Stream(_) => "<stream>".into(),
        Val::ErrorContext(_) => "<error-context>".into(),
    }
}

/// The outcome of a call as a tool sees it, from the function's results.
///
/// A `result` return value is unwrapped: `ok(v)` is `Ok(v)`, `err(e)` is `Err(e)` (the
/// tool failed with that value). Any other return value is `Ok`; no return value is
/// `Ok(null)`.
pub fn tool_output(results: &[Val]) -> Result<Value, Value> {
    match results {
        [] => Ok(Value::Null),
        [Val::Result(Ok(v))] => Ok(v.as_deref().map_or(Value::Null, val_to_json)),
        [Val::Result(Err(e))] => Err(e.as_deref().map_or(Value::Null, val_to_json)),
        [one] => Ok(val_to_json(one)),
        many => Ok(Value::Array(many.iter().map(val_to_json).collect())),
    }
}

fn float_to_json(x: f64) -> Value {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        x.into()
    }
}

fn single(key: &str, value: Value) -> Value {
    Value::Object(Map::from_iter([(key.to_owned(), value)]))
}

fn pair(k1: &str, v1: Value, k2: &str, v2: Value) -> Value {
    Value::Object(Map::from_iter([(k1.to_owned(), v1), (k2.to_owned(), v2)]))
}

/// A JSON path built on the stack while converting and rendered only for an error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root(name) => f.write_str(name),
            Path::Field(parent, name) => match parent {
                Path::Root("") => f.write_str(name),
                _ => write!(f, "{parent}.{name}"),
            },
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn error(path: Path<'_>, message: String) -> ConvertError {
    ConvertError {
        path: path.to_string(),
        message,
    }
}

fn mismatch(path: Path<'_>, ty: &Type, value: &Value) -> ConvertError {
    error(
        path,
        format!("expected {}, got {}", expected(ty), given(value)),
    )
}

/// `"a", "b", "c"` for the lists in error messages.
fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How the error messages spell a type, with the JSON it takes.
fn expected(ty: &Type) -> String {
    fn range(name: &str, min: impl fmt::Display, max: impl fmt::Display) -> String {
        format!("{name} ({min}..={max})")
    }
    match ty {
        Type::Bool => "bool (true or false)".into(),
        Type::S8 => range("s8", i8::MIN, i8::MAX),
        Type::U8 => range("u8", 0, u8::MAX),
        Type::S16 => range("s16", i16::MIN, i16::MAX),
        Type::U16 => range("u16", 0, u16::MAX),
        Type::S32 => range("s32", i32::MIN, i32::MAX),
        Type::U32 => range("u32", 0, u32::MAX),
        Type::S64 => range("s64", i64::MIN, i64::MAX),
        Type::U64 => range("u64", 0, u64::MAX),
        Type::Float32 => "f32 (a number)".into(),
        Type::Float64 => "f64 (a number)".into(),
        Type::Char => "char (a one-character string)".into(),
        Type::String => "string".into(),
        Type::List(_) => "list (an array)".into(),
        Type::FixedLengthList(l) => format!("list of {} (an array of {} items)", l.len(), l.len()),
        Type::Map(_) => "map (an array of {\"key\": …, \"value\": …})".into(),
        Type::Tuple(t) => format!("tuple (an array of {} items)", t.types().len()),
        Type::Record(r) => format!(
            "record (an object with fields {})",
            names(r.fields().map(|f| f.name))
        ),
        Type::Variant(v) => format!(
            "variant (an object {{\"tag\": …, \"val\": …}}, tag one of {})",
            names(v.cases().map(|c| c.name))
        ),
        Type::Enum(e) => format!("enum (one of {})", names(e.names())),
        Type::Flags(f) => format!("flags (an array of {})", names(f.names())),
        Type::Option(o) => format!("{} or null", expected(&o.ty())),
        Type::Result(_) => "result (an object {\"ok\": …} or {\"err\": …})".into(),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// How the error messages show a given value: scalars as JSON, long strings cut,
/// containers by size.
fn given(value: &Value) -> String {
    const MAX_CHARS: usize = 40;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match value {
        Value::String(s) if s.chars().count() > MAX_CHARS => {
            format!("{}…", Value::String(s.chars().take(MAX_CHARS).collect()))
        }
        Value::Array(items) if items.is_empty() => "an empty array".into(),
        Value::Array(items) => format!("an array of {}", plural(items.len(), "item")),
        Value::Object(object) if object.is_empty() => "an empty object".into(),
        Value::Object(object) => format!(
            "an object with keys {}",
            names(object.keys().map(String::as_str))
        ),
        scalar => scalar.to_string(),
    }
}

mod from_json;
use from_json::convert;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;

/// A lower bound of the size of `val` as JSON ([`val_to_json`] then serialized), or
/// `None` once it passes `max`: a result too large to keep is refused without
/// building its JSON (which takes several times the memory of the value).
pub fn json_size_at_most(val: &Val, max: usize) -> Option<usize> {
    let mut size = 0;
    add_size(val, max, &mut size).then_some(size)
}

/// Adds a lower bound of `val`'s JSON size to `size`; `false` once it passes `max`.
fn add_size(val: &Val, max: usize, size: &mut usize) -> bool {
    let add = |n: usize, size: &mut usize| {
        *size = size.saturating_add(n);
        *size <= max
    };
    // Separators between `n` items and the brackets around them.
    let items = |n: usize| 2 + n.saturating_sub(1);
    match val {
        Val::Bool(_) => add(4, size),
        Val::S8(_)
        | Val::U8(_)
        | Val::S16(_)
        | Val::U16(_)
        | Val::S32(_)
        | Val::U32(_)
        | Val::S64(_)
        | Val::U64(_)
        | Val::Float32(_)
        | Val::Float64(_) => add(1, size),
        Val::Char(_) => add(3, size),
        Val::String(s) | Val::Enum(s) => add(s.len() + 2, size),
        Val::List(list) | Val::Tuple(list) | Val::FixedLengthList(list) => {
            add(items(list.len()), size) && list.iter().all(|v| add_size(v, max, size))
        }
        Val::Map(entries) => {
            // `{"key": k, "value": v}` each.
            add(items(entries.len()) + entries.len() * 17, size)
                && entries
                    .iter()
                    .all(|(k, v)| add_size(k, max, size) && add_size(v, max, size))
        }
        Val::Record(fields) => {
            add(items(fields.len()), size)
                && fields
                    .iter()
                    .all(|(name, v)| add(name.len() + 3, size) && add_size(v, max, size))
        }
        Val::Variant(tag, payload) => {
            add(tag.len() + 10, size)
                && payload
                    .as_deref()
                    .is_none_or(|v| add(7, size) && add_size(v, max, size))
        }
        Val::Flags(set) => {
            add(items(set.len()), size) && set.iter().all(|f| add(f.len() + 2, size))
        }
        Val::Option(inner) => match inner.as_deref() {
            None => add(4, size),
            Some(v) => add_size(v, max, size),
        },
        Val::Result(Ok(v)) | Val::Result(Err(v)) => {
            add(7, size) && v.as_deref().is_none_or(|v| add_size(v, max, size))
        }
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => add(8, size),
    }
}
