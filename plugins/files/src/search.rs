//! Recursive, bounded search for files whose name or content contains a pattern.

use std::fs;

use crate::SearchHit;

/// Files larger than this are matched by name only.
const MAX_CONTENT: u64 = 1 << 20;
/// Files and directories visited at most per search.
const MAX_VISITED: usize = 10_000;
/// Longest `text` of a hit, in characters.
const MAX_LINE: usize = 200;

/// Searches `dir` (a full guest path) for `pattern`, case-insensitively.
pub(crate) fn search(dir: &str, pattern: &str, max: usize) -> Result<Vec<SearchHit>, String> {
    if pattern.is_empty() {
        return Err("search: the pattern is empty; give the text to look for".to_owned());
    }
    let needle = pattern.to_lowercase();
    let meta = fs::metadata(dir).map_err(|e| format!("search {dir}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("search {dir}: not a directory"));
    }
    let mut hits = Vec::new();
    let mut stack = vec![dir.trim_end_matches('/').to_owned()];
    let mut visited = 0;
    while let Some(current) = stack.pop() {
        let Ok(read) = fs::read_dir(&current) else {
            continue;
        };
        let mut names: Vec<_> = read.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        // Directories are pushed in reverse so that the walk visits them in name order.
        let mut subdirs = Vec::new();
        for entry in names {
            visited += 1;
            if visited > MAX_VISITED || hits.len() >= max {
                return Ok(hits);
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if current == "/" {
                format!("/{name}")
            } else {
                format!("{current}/{name}")
            };
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                subdirs.push(path);
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            if let Some((line, text)) = content_match(&path, &needle) {
                hits.push(SearchHit {
                    path,
                    line: Some(line),
                    text: Some(text),
                });
            } else if name.to_lowercase().contains(&needle) {
                hits.push(SearchHit {
                    path,
                    line: None,
                    text: None,
                });
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(hits)
}

/// The first line of the file at `path` that contains `needle` (lowercase), if the file
/// is small text.
fn content_match(path: &str, needle: &str) -> Option<(u32, String)> {
    let meta = fs::metadata(path).ok()?;
    if meta.len() > MAX_CONTENT {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    if bytes.contains(&0) {
        return None;
    }
    first_line_with(&String::from_utf8_lossy(&bytes), needle)
}

/// 1-based number and trimmed text of the first line of `text` containing `needle`.
pub(crate) fn first_line_with(text: &str, needle: &str) -> Option<(u32, String)> {
    text.lines().enumerate().find_map(|(i, line)| {
        line.to_lowercase().contains(needle).then(|| {
            let line: String = line.trim().chars().take(MAX_LINE).collect();
            (u32::try_from(i + 1).unwrap_or(u32::MAX), line)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_matching_line() {
        let text = "alpha\n  Beta gamma  \nbeta again";
        assert_eq!(
            first_line_with(text, "beta"),
            Some((2, "Beta gamma".into()))
        );
        assert_eq!(first_line_with(text, "delta"), None);
    }
}
