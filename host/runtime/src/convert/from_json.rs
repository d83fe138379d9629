//! JSON → [`Val`] for one value, checked against its type; errors carry the JSON path.

use serde_json::Value;
use wasmtime::component::{Type, Val};

use super::{ConvertError, Path, error, expected, given, mismatch, names};

pub(super) fn convert(value: &Value, ty: &Type, path: Path<'_>) -> Result<Val, ConvertError> {
    Ok(match (ty, value) {
        (Type::Bool, Value::Bool(b)) => Val::Bool(*b),
        (Type::S8, _) => Val::S8(int(value, ty, path)?),
        (Type::U8, _) => Val::U8(int(value, ty, path)?),
        (Type::S16, _) => Val::S16(int(value, ty, path)?),
        (Type::U16, _) => Val::U16(int(value, ty, path)?),
        (Type::S32, _) => Val::S32(int(value, ty, path)?),
        (Type::U32, _) => Val::U32(int(value, ty, path)?),
        (Type::S64, _) => Val::S64(int(value, ty, path)?),
        (Type::U64, _) => Val::U64(int(value, ty, path)?),
        (Type::Float32, _) => {
            let wide = float(value).ok_or_else(|| mismatch(path, ty, value))?;
            let narrow = wide as f32;
            if narrow.is_infinite() && wide.is_finite() {
                let message = format!("expected f32, got {} (too large for f32)", given(value));
                return Err(error(path, message));
            }
            Val::Float32(narrow)
        }
        (Type::Float64, _) => Val::Float64(float(value).ok_or_else(|| mismatch(path, ty, value))?),
        (Type::Char, Value::String(s)) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch(path, ty, value)),
            }
        }
        (Type::String, Value::String(s)) => Val::String(s.clone()),
        (Type::List(list), Value::Array(items)) => Val::List(elements(items, &list.ty(), path)?),
        (Type::FixedLengthList(list), Value::Array(items))
            if items.len() == list.len() as usize =>
        {
            Val::FixedLengthList(elements(items, &list.ty(), path)?)
        }
        (Type::Tuple(tuple), Value::Array(items)) if items.len() == tuple.types().len() => {
            let converted = items.iter().zip(tuple.types()).enumerate();
            Val::Tuple(
                converted
                    .map(|(i, (item, ty))| convert(item, &ty, Path::Index(&path, i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Type::Map(map), Value::Array(entries)) => {
            let (key_ty, value_ty) = (map.key(), map.value());
            let mut pairs = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let at = Path::Index(&path, i);
                let Some([key, value]) = exactly(entry, ["key", "value"]) else {
                    let message = format!(
                        "expected a map entry {{\"key\": …, \"value\": …}}, got {}",
                        given(entry)
                    );
                    return Err(error(at, message));
                };
                pairs.push((
                    convert(key, &key_ty, Path::Field(&at, "key"))?,
                    convert(value, &value_ty, Path::Field(&at, "value"))?,
                ));
            }
            Val::Map(pairs)
        }
        (Type::Record(record), Value::Object(object)) => {
            let fields = || names(record.fields().map(|f| f.name));
            if let Some(key) = object
                .keys()
                .find(|k| !record.fields().any(|f| f.name == *k))
            {
                let message = format!("unknown field \"{key}\" (fields: {})", fields());
                return Err(error(path, message));
            }
            let mut values = Vec::with_capacity(object.len());
            for field in record.fields() {
                let Some(value) = object.get(field.name) else {
                    if matches!(field.ty, Type::Option(_)) {
                        values.push((field.name.to_owned(), Val::Option(None)));
                        continue;
                    }
                    let message =
                        format!("missing field \"{}\" (fields: {})", field.name, fields());
                    return Err(error(path, message));
                };
                let value = convert(value, &field.ty, Path::Field(&path, field.name))?;
                values.push((field.name.to_owned(), value));
            }
            Val::Record(values)
        }
        (Type::Variant(variant), Value::Object(object)) => {
            let cases = || names(variant.cases().map(|c| c.name));
            if let Some(key) = object.keys().find(|k| *k != "tag" && *k != "val") {
                let message = format!("unknown key \"{key}\" (a variant has \"tag\" and \"val\")");
                return Err(error(path, message));
            }
            let tag = match object.get("tag") {
                Some(Value::String(tag)) => tag,
                Some(other) => {
                    let message = format!("expected one of {}, got {}", cases(), given(other));
                    return Err(error(Path::Field(&path, "tag"), message));
                }
                None => return Err(error(path, format!("missing \"tag\" (cases: {})", cases()))),
            };
            let Some(case) = variant.cases().find(|c| c.name == tag) else {
                let message = format!("unknown case \"{tag}\" (cases: {})", cases());
                return Err(error(Path::Field(&path, "tag"), message));
            };
            let payload = match (&case.ty, object.get("val")) {
                (Some(ty), Some(val)) => {
                    Some(Box::new(convert(val, ty, Path::Field(&path, "val"))?))
                }
                (None, None) => None,
                (Some(ty), None) => {
                    let message = format!("case \"{tag}\" needs \"val\": {}", expected(ty));
                    return Err(error(path, message));
                }
                (None, Some(_)) => {
                    let message = format!("case \"{tag}\" has no payload; leave \"val\" out");
                    return Err(error(Path::Field(&path, "val"), message));
                }
            };
            Val::Variant(tag.clone(), payload)
        }
        (Type::Enum(cases), Value::String(case)) => {
            if !cases.names().any(|name| name == case) {
                let message = format!("unknown case \"{case}\" (cases: {})", names(cases.names()));
                return Err(error(path, message));
            }
            Val::Enum(case.clone())
        }
        (Type::Flags(flags), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !matches!(item, Value::String(s) if flags.names().any(|name| name == s)) {
                    let message = format!(
                        "unknown flag {} (flags: {})",
                        given(item),
                        names(flags.names())
                    );
                    return Err(error(Path::Index(&path, i), message));
                }
            }
            let set = flags
                .names()
                .filter(|name| items.iter().any(|item| item == name));
            Val::Flags(set.map(str::to_owned).collect())
        }
        (Type::Option(_), Value::Null) => Val::Option(None),
        (Type::Option(option), _) => {
            Val::Option(Some(Box::new(convert(value, &option.ty(), path)?)))
        }
        (Type::Result(result), Value::Object(object)) if object.len() == 1 => {
            let branch = |ty: Option<Type>, value: &Value, name| -> Result<_, ConvertError> {
                let at = Path::Field(&path, name);
                match ty {
                    Some(ty) => Ok(Some(Box::new(convert(value, &ty, at)?))),
                    None if value.is_null() => Ok(None),
                    None => {
                        let message = format!(
                            "expected null (this result has no {name} value), got {}",
                            given(value)
                        );
                        Err(error(at, message))
                    }
                }
            };
            match object.iter().next() {
                Some((key, value)) if key == "ok" => {
                    Val::Result(Ok(branch(result.ok(), value, "ok")?))
                }
                Some((key, value)) if key == "err" => {
                    Val::Result(Err(branch(result.err(), value, "err")?))
                }
                _ => return Err(mismatch(path, ty, value)),
            }
        }
        (
            Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext,
            _,
        ) => {
            return Err(error(
                path,
                format!("{} values cannot be given as JSON", expected(ty)),
            ));
        }
        _ => return Err(mismatch(path, ty, value)),
    })
}

/// An integer of the target width, from a JSON integer or a float without fraction.
fn int<T: TryFrom<i128>>(value: &Value, ty: &Type, path: Path<'_>) -> Result<T, ConvertError> {
    let wide = match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i128::from(i)),
            (_, Some(u), _) => Some(i128::from(u)),
            // `as` saturates; the range check below rejects what saturated.
            (_, _, Some(f)) if f.fract() == 0.0 => Some(f as i128),
            _ => None,
        },
        _ => None,
    };
    wide.and_then(|w| T::try_from(w).ok())
        .ok_or_else(|| mismatch(path, ty, value))
}

/// A JSON number, or one of the strings that stand for NaN and the infinities.
fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn elements(items: &[Value], ty: &Type, path: Path<'_>) -> Result<Vec<Val>, ConvertError> {
    let items = items.iter().enumerate();
    items
        .map(|(i, item)| convert(item, ty, Path::Index(&path, i)))
        .collect()
}

/// The values of an object that has exactly the keys `keys` and no others.
fn exactly<'v, const N: usize>(value: &'v Value, keys: [&str; N]) -> Option<[&'v Value; N]> {
    let object = value.as_object().filter(|o| o.len() == N)?;
    let values = keys.map(|key| object.get(key));
    values
        .iter()
        .all(Option::is_some)
        .then(|| values.map(Option::unwrap))
}
