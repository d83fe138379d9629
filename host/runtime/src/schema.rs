//! JSON Schema (draft 2020-12) for the parameters and results of component functions.
//!
//! The schemas describe exactly the JSON that [`crate::convert`] accepts and produces, so a
//! model that follows the schema never hits a conversion error. The mapping is the one other
//! WebAssembly MCP hosts (Microsoft Wassette) use:
//!
//! | WIT                 | JSON                                                    |
//! |---------------------|---------------------------------------------------------|
//! | `bool`              | `true` / `false`                                        |
//! | `s8` … `u64`        | integer, range-checked (`minimum`/`maximum` of the type)|
//! | `f32`, `f64`        | number                                                  |
//! | `char`              | one-character string                                    |
//! | `string`            | string                                                  |
//! | `list<T>`           | array of T                                              |
//! | `tuple<A, B>`       | array `[a, b]` of exactly that length                   |
//! | `record`            | object with the WIT field names (kebab-case kept)       |
//! | `variant`           | `{"tag": "<case>", "val": <payload>}` (no `val` without payload) |
//! | `enum`              | string, one of the cases                                |
//! | `flags`             | array of the names of the flags that are set            |
//! | `option<T>`         | `null` or T                                             |
//! | `result<T, E>`      | `{"ok": T}` or `{"err": E}` (missing T/E → `null`)      |
//! | `map<K, V>`         | array of `{"key": K, "value": V}`                       |
//!
//! Resources (`own`, `borrow`), `future`, `stream` and `error-context` have no JSON form:
//! a function that takes or returns one is not a tool, and [`Unsupported`] says where the
//! type occurs. This module only reads types; it touches nothing else.

use serde_json::{Map, Value, json};
use wasmtime::component::Type;

/// The JSON Schema dialect of every document this module produces.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A type with no JSON form (a resource, future, stream or error-context), and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{ty}{} has no JSON form; a tool takes and returns plain data \
     (no resources, futures, streams or error-contexts)",
    at(path)
)]
pub struct Unsupported {
    /// Where the type occurs, as a JSON path: `conn`, `options.handle`, `items[]`,
    /// `shape.val`, `<return>.ok`. Empty for a type given to [`type_schema`] directly.
    pub path: String,
    /// The WIT spelling of the type: `own<resource>`, `borrow<resource>`, `future`,
    /// `stream`, `error-context`.
    pub ty: &'static str,
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at \"{path}\"")
    }
}

/// The path used for a function's return value in [`Unsupported::path`].
pub const RETURN_PATH: &str = "<return>";

/// The schema of one value of type `ty` (a subschema: no `$schema` key).
pub fn type_schema(ty: &Type) -> Result<Value, Unsupported> {
    schema_at(ty, "")
}

/// The input schema of a function: an object keyed by the WIT parameter names, every
/// parameter required except `option` ones (left out means `none`), nothing else
/// allowed.
pub fn input_schema(params: &[(String, Type)]) -> Result<Value, Unsupported> {
    let mut properties = Map::new();
    for (name, ty) in params {
        properties.insert(name.clone(), schema_at(ty, name)?);
    }
    let required: Vec<&str> = params
        .iter()
        .filter(|(_, ty)| !matches!(ty, Type::Option(_)))
        .map(|(name, _)| name.as_str())
        .collect();
    Ok(json!({
        "$schema": DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// The output schema of a function with return type `result` (`None`: no return value).
///
/// A function returning `result<T, E>` is a tool that succeeds with the `ok` value, so its
/// output schema is T's (`null` when T is absent); the `err` value is the tool's error and
/// is not described here. Any other return type is described as it is; no return value is
/// `null`.
pub fn output_schema(result: Option<&Type>) -> Result<Value, Unsupported> {
    let schema = match result {
        None => null_schema(),
        Some(Type::Result(r)) => match r.ok() {
            Some(ok) => schema_at(&ok, &format!("{RETURN_PATH}.ok"))?,
            None => null_schema(),
        },
        Some(ty) => schema_at(ty, RETURN_PATH)?,
    };
    let mut document = Map::from_iter([("$schema".to_owned(), Value::from(DIALECT))]);
    if let Value::Object(schema) = schema {
        document.extend(schema);
    }
    Ok(Value::Object(document))
}

fn null_schema() -> Value {
    json!({ "type": "null" })
}

fn child(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_owned()
    } else {
        format!("{path}.{segment}")
    }
}

fn integer(min: i64, max: u64) -> Value {
    json!({ "type": "integer", "minimum": min, "maximum": max })
}

fn schema_at(ty: &Type, path: &str) -> Result<Value, Unsupported> {
    let unsupported = |ty: &'static str| Unsupported {
        path: path.to_owned(),
        ty,
    };
    Ok(match ty {
        Type::Bool => json!({ "type": "boolean" }),
        Type::S8 => integer(i8::MIN.into(), i8::MAX as u64),
        Type::U8 => integer(0, u8::MAX.into()),
        Type::S16 => integer(i16::MIN.into(), i16::MAX as u64),
        Type::U16 => integer(0, u16::MAX.into()),
        Type::S32 => integer(i32::MIN.into(), i32::MAX as u64),
        Type::U32 => integer(0, u32::MAX.into()),
        Type::S64 => integer(i64::MIN, i64::MAX as u64),
        Type::U64 => integer(0, u64::MAX),
        Type::Float32 | Type::Float64 => json!({ "type": "number" }),
        Type::Char => json!({ "type": "string", "minLength": 1, "maxLength": 1 }),
        Type::String => json!({ "type": "string" }),
        Type::List(list) => {
            json!({ "type": "array", "items": schema_at(&list.ty(), &format!("{path}[]"))? })
        }
        Type::FixedLengthList(list) => json!({
            "type": "array",
            "items": schema_at(&list.ty(), &format!("{path}[]"))?,
            "minItems": list.len(),
            "maxItems": list.len(),
        }),
        Type::Map(map) => json!({
            "type": "array",
            "items": object(
                [
                    ("key", schema_at(&map.key(), &format!("{path}[].key"))?, false),
                    ("value", schema_at(&map.value(), &format!("{path}[].value"))?, false),
                ],
            ),
        }),
        Type::Tuple(tuple) => {
            let items = tuple
                .types()
                .enumerate()
                .map(|(i, ty)| schema_at(&ty, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            json!({
                "type": "array",
                "prefixItems": items,
                "minItems": items.len(),
                "maxItems": items.len(),
                "items": false,
            })
        }
        Type::Record(record) => {
            let mut fields = Vec::with_capacity(record.fields().len());
            for field in record.fields() {
                let schema = schema_at(&field.ty, &child(path, field.name))?;
                fields.push((field.name, schema, matches!(field.ty, Type::Option(_))));
            }
            object(fields)
        }
        Type::Variant(variant) => {
            let mut cases = Vec::with_capacity(variant.cases().len());
            for case in variant.cases() {
                let tag = ("tag", json!({ "const": case.name }), false);
                cases.push(match &case.ty {
                    Some(ty) => object([tag, ("val", schema_at(ty, &child(path, "val"))?, false)]),
                    None => object([tag]),
                });
            }
            json!({ "oneOf": cases })
        }
        Type::Enum(e) => json!({ "type": "string", "enum": e.names().collect::<Vec<_>>() }),
        Type::Flags(flags) => json!({
            "type": "array",
            "items": { "type": "string", "enum": flags.names().collect::<Vec<_>>() },
            "uniqueItems": true,
        }),
        Type::Option(option) => json!({ "anyOf": [schema_at(&option.ty(), path)?, null_schema()] }),
        Type::Result(result) => {
            let branch = |name: &str, ty: Option<Type>| -> Result<Value, Unsupported> {
                let schema = match ty {
                    Some(ty) => schema_at(&ty, &child(path, name))?,
                    None => null_schema(),
                };
                Ok(object([(name, schema, false)]))
            };
            json!({ "oneOf": [branch("ok", result.ok())?, branch("err", result.err())?] })
        }
        Type::Own(_) => return Err(unsupported("own<resource>")),
        Type::Borrow(_) => return Err(unsupported("borrow<resource>")),
        Type::Future(_) => return Err(unsupported("future")),
        Type::Stream(_) => return Err(unsupported("stream")),
        Type::ErrorContext => return Err(unsupported("error-context")),
    })
}

/// A closed object schema; properties are required unless `optional` (an `option`).
fn object<'a>(properties: impl IntoIterator<Item = (&'a str, Value, bool)>) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, schema, optional) in properties {
        if !optional {
            required.push(Value::from(name));
        }
        props.insert(name.to_owned(), schema);
    }
    json!({
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": false,
    })
}

#[cfg(test)]
pub(crate) mod tests;
