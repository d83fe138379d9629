//! Finding URLs, e-mail addresses and numbers in a text, without regular expressions.

use crate::Found;

/// Most results `extract` returns.
const MAX_FOUND: usize = 1000;

/// Everything of the wanted kinds in `text`, in order of appearance.
pub(crate) fn extract(text: &str, urls: bool, emails: bool, numbers: bool) -> Vec<Found> {
    let mut found = Vec::new();
    for token in text.split_whitespace() {
        if found.len() >= MAX_FOUND {
            break;
        }
        let token = token.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '\'', '"']);
        let token = token.trim_start_matches(['(', '[', '<', '\'', '"']);
        let lower = token.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            if urls && token.len() > token.find("://").unwrap_or(0) + 3 {
                found.push(Found::Url(token.to_owned()));
            }
        } else if is_email(token) {
            if emails {
                found.push(Found::Email(token.to_owned()));
            }
        } else if numbers {
            found.extend(numbers_in(token).into_iter().map(Found::Number));
        }
    }
    found.truncate(MAX_FOUND);
    found
}

fn is_email(token: &str) -> bool {
    let Some((local, domain)) = token.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "._%+-".contains(c))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

/// Numbers inside a token such as `42`, `-3.5`, `1e6`, `($12.50)`, `10kg`.
fn numbers_in(token: &str) -> Vec<f64> {
    let bytes = token.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let sign = (bytes[i] == b'-' || bytes[i] == b'+')
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
        if !(bytes[i].is_ascii_digit() || sign) {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i + 1 < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            let mut j = i + 1;
            if bytes[j] == b'-' || bytes[j] == b'+' {
                j += 1;
            }
            if bytes.get(j).is_some_and(u8::is_ascii_digit) {
                i = j;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        if let Ok(n) = token[start..i].parse::<f64>() {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        extract(text, true, true, true)
            .into_iter()
            .map(|f| match f {
                Found::Url(u) => format!("url {u}"),
                Found::Email(e) => format!("email {e}"),
                Found::Number(n) => format!("number {n}"),
            })
            .collect()
    }

    #[test]
    fn finds_each_kind_in_order() {
        assert_eq!(
            all(
                "See https://example.com/a?b=1. Mail ann.lee@example.org, pay $12.50 or -3e2 (x7)."
            ),
            [
                "url https://example.com/a?b=1",
                "email ann.lee@example.org",
                "number 12.5",
                "number -300",
                "number 7",
            ]
        );
    }

    #[test]
    fn respects_the_kinds() {
        let only_urls = extract("http://a.example 5 b@c.de", true, false, false);
        assert_eq!(only_urls.len(), 1);
        assert!(extract("http://a.example 5 b@c.de", false, false, false).is_empty());
        assert!(!is_email("a@b"));
        assert!(!is_email("@b.c"));
    }
}
