//! Canonical JSON (RFC 8785, the JSON Canonicalization Scheme): the bytes a record's
//! hash and a checkpoint's signature are computed over, so another program can check
//! them.
//!
//! - no whitespace; object members sorted by their names compared as UTF-16 code units;
//! - strings: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00xx`
//!   (lowercase hex), everything else as UTF-8 (no `\u` escapes for non-ASCII);
//! - numbers: integers in full; other numbers as ECMAScript's `Number.prototype.toString`
//!   writes them (shortest round-trip digits, exponent form below 1e-6 and from 1e21).
//!
//! One difference from RFC 8785, which reads every number as an IEEE double: an integer
//! of magnitude 2^53 or more is written exactly here, where JCS would round it. Warden
//! writes no such numbers; a consumer should treat large integers as exact.

use serde_json::Value;

/// The canonical encoding of `value`.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn write(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // Members usually arrive sorted (records read back, small literal maps):
            // then no sorted copy is made.
            let sorted = map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| key_order(a, b).is_le());
            if sorted {
                write_members(out, map.iter());
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| key_order(a.0, b.0));
                write_members(out, members.into_iter());
            }
            out.push(b'}');
        }
    }
}

fn write_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (key, item)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write(out, item);
    }
}

/// The order of member names: by UTF-16 code units. UTF-8 bytes compare as code
/// points, which is the same order unless a character outside the BMP is involved.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    let astral = |s: &str| s.bytes().any(|b| b >= 0xf0);
    if astral(a) || astral(b) {
        a.encode_utf16().cmp(b.encode_utf16())
    } else {
        a.cmp(b)
    }
}

/// Writes a JSON string as RFC 8785 does.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Only ASCII needs escaping: copy the runs between escapes as they are.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0..0x20 => {
                out.extend_from_slice(&bytes[start..i]);
                start = i + 1;
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        // serde_json holds only finite floats.
        out.extend_from_slice(es_number(n.as_f64().unwrap_or(0.0)).as_bytes());
    }
}

/// `Number.prototype.toString` of ECMAScript for a finite double.
fn es_number(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust writes the shortest round-trip digits: "d.ddde-7".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    // x = 0.digits × 10^n
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &digits[..n as usize], &digits[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e = if e < 0 {
            e.to_string()
        } else {
            format!("+{e}")
        };
        if k == 1 {
            format!("{digits}e{e}")
        } else {
            format!("{}.{}e{e}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_sorted_no_whitespace() {
        let v = json!({"b": [1, true, null], "a": {"z": "x", "\u{e9}": 1, "A": 2}});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a":{"A":2,"z":"x","é":1},"b":[1,true,null]}"#
        );
    }

    #[test]
    fn keys_compare_as_utf16() {
        // U+1F600 is D83D DE00 in UTF-16, below U+FF21 (but above it as a code point).
        let v = json!({"\u{ff21}": 1, "\u{1f600}": 2});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            "{\"\u{1f600}\":2,\"\u{ff21}\":1}"
        );
    }

    #[test]
    fn strings_escape_as_rfc8785() {
        let v = json!("q\"b\\n\n\u{1}\u{7f}é");
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            "\"q\\\"b\\\\n\\n\\u0001\u{7f}é\""
        );
    }

    #[test]
    fn numbers_as_ecmascript() {
        // Examples from RFC 8785 appendix B.
        for (x, s) in [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (4.5, "4.5"),
            (-0.5, "-0.5"),
            (333333333.3333332, "333333333.3333332"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(es_number(x), s, "{x}");
        }
        assert_eq!(to_vec(&json!(-0.0)), b"0");
        assert_eq!(
            to_vec(&json!(18446744073709551615u64)),
            b"18446744073709551615"
        );
    }
}
