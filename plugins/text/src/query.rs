//! A small JSON path language: `a.b[2].c`, `[-1]`, `["key.with.dots"]`, `$`.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

/// Returns the value at `path` in `document`, as compact JSON text.
pub(crate) fn query(document: &str, path: &str) -> Result<String, String> {
    let root: Value = serde_json::from_str(document)
        .map_err(|e| format!("the document is not valid JSON: {e}"))?;
    let steps = parse(path)?;
    let mut current = &root;
    let mut walked = String::from("$");
    for step in &steps {
        current = match (step, current) {
            (Step::Key(key), Value::Object(map)) => map.get(key).ok_or_else(|| {
                let mut keys: Vec<&str> = map.keys().map(String::as_str).take(20).collect();
                keys.sort_unstable();
                format!("{walked} has no key {key:?} (keys: {})", keys.join(", "))
            })?,
            (Step::Index(index), Value::Array(items)) => {
                let len = items.len() as i64;
                let at = if *index < 0 { len + index } else { *index };
                usize::try_from(at)
                    .ok()
                    .and_then(|at| items.get(at))
                    .ok_or_else(|| {
                        format!("{walked} has {len} elements; index {index} is out of range")
                    })?
            }
            (Step::Key(key), other) => {
                return Err(format!(
                    "{walked} is {} {}, not an object; cannot take key {key:?}",
                    article(other),
                    type_name(other)
                ));
            }
            (Step::Index(index), other) => {
                return Err(format!(
                    "{walked} is {} {}, not an array; cannot take index {index}",
                    article(other),
                    type_name(other)
                ));
            }
        };
        match step {
            Step::Key(key) if is_plain(key) => walked.push_str(&format!(".{key}")),
            Step::Key(key) => walked.push_str(&format!("[{key:?}]")),
            Step::Index(index) => walked.push_str(&format!("[{index}]")),
        }
    }
    Ok(current.to_string())
}

/// The JSON type of a value, as JSON Schema names it.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn article(value: &Value) -> &'static str {
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        "an"
    } else {
        "a"
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty() && !key.contains(['.', '[', ']', '"'])
}

fn parse(path: &str) -> Result<Vec<Step>, String> {
    let path = path.trim();
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (step, len) = if after.starts_with('"') {
                let mut stream = serde_json::Deserializer::from_str(after).into_iter::<String>();
                let value = stream
                    .next()
                    .and_then(Result::ok)
                    .ok_or_else(|| format!("path {path:?}: unterminated quoted key"))?;
                (Step::Key(value), stream.byte_offset())
            } else {
                let end = after
                    .find(']')
                    .ok_or_else(|| format!("path {path:?}: missing `]`"))?;
                let index = after[..end].trim().parse::<i64>().map_err(|_| {
                    format!(
                        "path {path:?}: `[{}]` is not an integer index; quote keys as [\"key\"]",
                        &after[..end]
                    )
                })?;
                (Step::Index(index), end)
            };
            let after = &after[len..];
            rest = after
                .strip_prefix(']')
                .ok_or_else(|| format!("path {path:?}: missing `]`"))?;
            steps.push(step);
        } else {
            let rest_key = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_key.find(['.', '[']).unwrap_or(rest_key.len());
            if end == 0 {
                return Err(format!("path {path:?}: empty key"));
            }
            steps.push(Step::Key(rest_key[..end].to_owned()));
            rest = &rest_key[end..];
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"a": {"b": [1, 2, {"c": "x"}]}, "k.d": true, "n": null}"#;

    #[test]
    fn walks_keys_and_indexes() {
        assert_eq!(query(DOC, "a.b[2].c").unwrap(), r#""x""#);
        assert_eq!(query(DOC, "$.a.b[-1]").unwrap(), r#"{"c":"x"}"#);
        assert_eq!(query(DOC, r#"["k.d"]"#).unwrap(), "true");
        assert_eq!(query(DOC, "n").unwrap(), "null");
        assert_eq!(query("[1]", "").unwrap(), "[1]");
        assert_eq!(query("[[5]]", "[0][0]").unwrap(), "5");
    }

    #[test]
    fn errors_name_the_failing_step() {
        assert_eq!(
            query(DOC, "a.x").unwrap_err(),
            r#"$.a has no key "x" (keys: b)"#
        );
        assert_eq!(
            query(DOC, "a.b[7]").unwrap_err(),
            "$.a.b has 3 elements; index 7 is out of range"
        );
        assert_eq!(
            query(DOC, "a.b.c").unwrap_err(),
            r#"$.a.b is an array, not an object; cannot take key "c""#
        );
        assert!(
            query("{", "a")
                .unwrap_err()
                .starts_with("the document is not valid JSON")
        );
        assert!(
            query(DOC, "a[x]")
                .unwrap_err()
                .contains("not an integer index")
        );
        assert!(query(DOC, "a..b").unwrap_err().contains("empty key"));
    }
}
