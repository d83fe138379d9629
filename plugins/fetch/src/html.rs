//! HTML reduced to readable text: scripts, styles and comments dropped, tags removed
//! (block tags become line breaks, list items get a bullet), common entities decoded,
//! whitespace collapsed as a browser does (line breaks in the source are spaces, also
//! inside `<pre>`). Hand-written and small: no HTML parser crate builds for
//! `wasm32-wasip2` at a size worth it here.

/// Elements whose whole content is dropped.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "iframe", "object", "title",
];

/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "address",
    "aside",
    "br",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "summary",
    "tbody",
    "thead",
    "tfoot",
    "tr",
];

/// Elements that start a new paragraph (an empty line before and after).
const PARAGRAPHS: &[&str] = &[
    "article",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "ul",
];

/// Reduces an HTML document to its readable text.
pub(crate) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut title = None;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            // A lone `<` at the end: text, not a tag.
            push_text(&mut out, rest);
            rest = "";
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            // `<!doctype>`, `<?xml>`, or a `<` that was text.
            if !tag.starts_with('!') && !tag.starts_with('?') {
                out.push('<');
                push_text(&mut out, tag);
                out.push('>');
            }
            continue;
        }
        if !closing && name == "title" {
            let end = find_close(rest, "title");
            title = Some(decode_entities(&rest[..end]).trim().to_owned());
        }
        if !closing && SKIPPED.contains(&name.as_str()) && !tag.ends_with('/') {
            let end = find_close(rest, &name);
            rest = &rest[end..];
            rest = rest.find('>').map_or("", |gt| &rest[gt + 1..]);
            continue;
        }
        if PARAGRAPHS.contains(&name.as_str()) {
            break_line(&mut out, 2);
        } else if BLOCKS.contains(&name.as_str()) {
            break_line(&mut out, 1);
            if name == "li" && !closing {
                out.push_str("- ");
            }
        } else if matches!(name.as_str(), "td" | "th") && !closing {
            out.push('\t');
        }
    }
    push_text(&mut out, rest);
    let body = collapse(&out);
    match title {
        Some(title) if !title.is_empty() && !body.starts_with(&title) => {
            format!("{title}\n\n{body}")
        }
        _ => body,
    }
}

/// Ends `out` with (at least) `count` line breaks, without trailing spaces.
fn break_line(out: &mut String, count: usize) {
    out.truncate(out.trim_end_matches(' ').len());
    let have = out.len() - out.trim_end_matches('\n').len();
    for _ in have..count {
        out.push('\n');
    }
}

/// Appends text between tags: entities decoded, source line breaks as spaces.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode_entities(text);
    out.extend(
        decoded
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c }),
    );
}

/// Byte offset of `</name` (any case) in `s`, or the end of `s`.
fn find_close(s: &str, name: &str) -> usize {
    let lower = s.to_ascii_lowercase();
    lower.find(&format!("</{name}")).unwrap_or(s.len())
}

/// Collapses runs of spaces and tabs within lines, trims lines, and keeps at most one
/// empty line between paragraphs.
fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            // Only an empty line is a paragraph break; spaces between tags are not.
            blank += usize::from(line.is_empty());
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&words.join(" "));
    }
    out
}

/// Decodes named entities that matter in prose and all numeric ones. An unknown entity
/// is kept as written.
pub(crate) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|i| i + 1);
        let decoded = end
            .filter(|&end| rest[end..].starts_with(';'))
            .and_then(|end| entity(&rest[1..end]).map(|c| (c, end + 1)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).or(Some('\u{FFFD}'));
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "middot" => '·',
        "bull" => '•',
        "euro" => '€',
        "pound" => '£',
        "times" => '×',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_scripts_styles_and_tags() {
        let html = r#"<!DOCTYPE html><html><head><title>Hi &amp; bye</title>
            <style>p { color: red }</style><script>alert("<p>x</p>")</script></head>
            <body><h1>Header</h1><!-- a comment --><p>One   <b>two</b>
            three</p><SCRIPT type="x">evil()</SCRIPT><ul><li>a</li><li>b</li></ul></body></html>"#;
        assert_eq!(
            to_text(html),
            "Hi & bye\n\nHeader\n\nOne two three\n\n- a\n- b"
        );
    }

    #[test]
    fn decodes_entities() {
        assert_eq!(
            decode_entities("a &lt;b&gt; &#65;&#x42; &quot;q&quot; &nbsp;&copy; &bogus; & x"),
            "a <b> AB \"q\"  © &bogus; & x"
        );
        assert_eq!(decode_entities("&#xFFFFFFFF;"), "\u{FFFD}");
    }

    #[test]
    fn keeps_lone_angle_brackets_and_collapses_blank_lines() {
        assert_eq!(to_text("1 < 2"), "1 < 2");
        assert_eq!(to_text("a<p></p><p></p><br><p>b"), "a\n\nb");
        assert_eq!(to_text("<div>a</div>\n\n\n<div>b</div>"), "a\nb");
        assert_eq!(to_text("<td>x</td><td>y</td>"), "x y");
    }

    #[test]
    fn unclosed_script_drops_the_rest() {
        assert_eq!(to_text("keep<script>never closed"), "keep");
    }
}
