//! Names an operator gives: plugins.

use crate::error::NameError;

/// Checks a plugin name: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        return Err(NameError {
            name: name.to_string(),
        });
    }
    Ok(())
}
