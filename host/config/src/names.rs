//! Names an operator gives: plugins.

use anyhow::bail;

/// Checks a plugin name: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit, at most 64 characters.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "invalid plugin name {name:?}: use lowercase letters, digits, '-' and '_' (at most 64), e.g. --name my-tool"
        );
    }
    Ok(())
}
