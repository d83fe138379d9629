//! JSON for a WIT type, made from fuzzer bytes: mostly the shape the type asks for,
//! with values at the edges of their ranges, and sometimes any JSON at all (the wrong
//! kind, a missing or unknown member, a number out of range), so both acceptance and
//! every refusal are reached.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};
use wasmtime::component::Type;

/// How deep JSON goes before only leaves are made.
const MAX_DEPTH: u32 = 6;

/// JSON meant for `ty`.
pub(crate) fn for_type(u: &mut Unstructured<'_>, ty: &Type, depth: u32) -> Result<Value> {
    // One value in 16 is anything.
    if u.ratio(1, 16)? || depth > MAX_DEPTH {
        return any(u, depth);
    }
    Ok(match ty {
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::S8 => int(u, i8::MIN.into(), i8::MAX.into())?,
        Type::U8 => int(u, 0, u8::MAX.into())?,
        Type::S16 => int(u, i16::MIN.into(), i16::MAX.into())?,
        Type::U16 => int(u, 0, u16::MAX.into())?,
        Type::S32 => int(u, i32::MIN.into(), i32::MAX.into())?,
        Type::U32 => int(u, 0, u32::MAX.into())?,
        Type::S64 => int(u, i64::MIN.into(), i64::MAX.into())?,
        Type::U64 => int(u, 0, u64::MAX.into())?,
        Type::Float32 | Type::Float64 => float(u)?,
        Type::Char => match u.int_in_range(0..=3)? {
            0 => json!(""),
            1 => json!("ab"),
            _ => json!(u.arbitrary::<char>()?.to_string()),
        },
        Type::String => Value::String(u.arbitrary()?),
        Type::List(list) => {
            let ty = list.ty();
            array(u, depth, |u| for_type(u, &ty, depth + 1))?
        }
        Type::FixedLengthList(list) => {
            let ty = list.ty();
            let len = usize::try_from(list.len()).unwrap_or(usize::MAX);
            let len = match u.int_in_range(0..=3)? {
                0 => u.int_in_range(0..=4)?,
                _ => len.min(64),
            };
            let items = (0..len)
                .map(|_| for_type(u, &ty, depth + 1))
                .collect::<Result<_>>()?;
            Value::Array(items)
        }
        Type::Map(map) => {
            let (key, value) = (map.key(), map.value());
            array(u, depth, |u| {
                Ok(json!({
                    "key": for_type(u, &key, depth + 1)?,
                    "value": for_type(u, &value, depth + 1)?,
                }))
            })?
        }
        Type::Record(record) => {
            let mut object = Map::new();
            for field in record.fields() {
                // Sometimes a field is left out.
                if !u.ratio(1, 8)? {
                    object.insert(field.name.to_owned(), for_type(u, &field.ty, depth + 1)?);
                }
            }
            if u.ratio(1, 16)? {
                object.insert(u.arbitrary()?, any(u, depth + 1)?);
            }
            Value::Object(object)
        }
        Type::Tuple(tuple) => {
            let mut items = tuple
                .types()
                .map(|ty| for_type(u, &ty, depth + 1))
                .collect::<Result<Vec<_>>>()?;
            if u.ratio(1, 16)? {
                items.pop();
            }
            Value::Array(items)
        }
        Type::Variant(variant) => {
            let cases: Vec<_> = variant.cases().map(|c| (c.name.to_owned(), c.ty)).collect();
            let (name, payload) = u.choose(&cases)?;
            let mut object = Map::new();
            object.insert("tag".into(), json!(name));
            match payload {
                Some(ty) => {
                    object.insert("val".into(), for_type(u, ty, depth + 1)?);
                }
                None if u.ratio(1, 8)? => {
                    object.insert("val".into(), any(u, depth + 1)?);
                }
                None => {}
            }
            Value::Object(object)
        }
        Type::Enum(names) => {
            let names: Vec<&str> = names.names().collect();
            json!(u.choose(&names)?)
        }
        Type::Flags(flags) => {
            let names: Vec<&str> = flags.names().collect();
            let mut set = Vec::new();
            for name in names {
                if u.arbitrary()? {
                    set.push(json!(name));
                }
            }
            Value::Array(set)
        }
        Type::Option(option) => {
            if u.arbitrary()? {
                Value::Null
            } else {
                for_type(u, &option.ty(), depth + 1)?
            }
        }
        Type::Result(result) => {
            let (key, ty) = if u.arbitrary()? {
                ("ok", result.ok())
            } else {
                ("err", result.err())
            };
            let value = match ty {
                Some(ty) => for_type(u, &ty, depth + 1)?,
                None => Value::Null,
            };
            json!({ key: value })
        }
        // No JSON form: anything, to be refused.
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            any(u, depth + 1)?
        }
    })
}

/// An integer in `min..=max`, at an edge of it, just outside it, or a float.
fn int(u: &mut Unstructured<'_>, min: i128, max: i128) -> Result<Value> {
    let n: i128 = match u.int_in_range(0..=7)? {
        0 => min,
        1 => max,
        2 => min - 1,
        3 => max + 1,
        4 => 0,
        _ => u.int_in_range(min..=max)?,
    };
    Ok(match u.int_in_range(0..=7)? {
        // 2.0 is an integer, 2.5 is not.
        0 => json!(n as f64),
        1 => json!(n as f64 + 0.5),
        _ => match (i64::try_from(n), u64::try_from(n)) {
            (Ok(n), _) => json!(n),
            (_, Ok(n)) => json!(n),
            _ => json!(n as f64),
        },
    })
}

/// A number, or one of the strings floats without a JSON number are written as.
fn float(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=7)? {
        0 => json!("NaN"),
        1 => json!("Infinity"),
        2 => json!("-Infinity"),
        3 => json!(f64::from(f32::MAX) * 2.0),
        4 => json!(f32::MIN_POSITIVE / 2.0),
        _ => json!(u.arbitrary::<f64>()?),
    })
}

fn array(
    u: &mut Unstructured<'_>,
    depth: u32,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<Value> {
    let len = u.int_in_range(0..=if depth < 3 { 6 } else { 2 })?;
    Ok(Value::Array(
        (0..len).map(|_| item(u)).collect::<Result<_>>()?,
    ))
}

/// Any JSON.
pub(crate) fn any(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let leaf = depth > MAX_DEPTH;
    Ok(match u.int_in_range(0..=if leaf { 4 } else { 6 })? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<f64>()?),
        4 => Value::String(u.arbitrary()?),
        5 => array(u, depth, |u| any(u, depth + 1))?,
        _ => {
            let len = u.int_in_range(0..=4)?;
            let mut object = Map::new();
            for _ in 0..len {
                object.insert(u.arbitrary()?, any(u, depth + 1)?);
            }
            Value::Object(object)
        }
    })
}
