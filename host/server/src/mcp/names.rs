//! MCP tool names for Warden tools, and back.
//!
//! The MCP specification (2025-11-25, "Tool names") allows 1 to 128 characters of
//! `A-Z a-z 0-9 _ - .`; many model APIs that clients forward tools to are stricter and
//! refuse `.`. So the MCP name of tool `tool` of plugin `plugin` is
//!
//! ```text
//! <plugin>__<tool with every "." written as "_">
//! text/word-count              → text__word-count
//! text/transform.case-convert  → text__transform_case-convert
//! ```
//!
//! The mapping is reversible: a Warden tool name is a WIT name (kebab-case words,
//! never `_`) or `<interface>.<function>`, so the tool part never holds `__` and never
//! starts with `_`, and the *last* `__` of an MCP name is the separator even when the
//! plugin's name holds `_` itself. A tool whose name does not map back to itself (or
//! would be longer than 128 characters) is not offered over MCP, with a warning.

/// Between the plugin's and the tool's part of an MCP tool name.
pub const SEPARATOR: &str = "__";

/// The longest tool name the MCP specification allows.
pub const MAX_LEN: usize = 128;

/// The MCP name of `tool` of `plugin`, or `None` when it has no reversible one (a
/// character outside the MCP alphabet, a `_` in the tool's name, too long).
pub fn to_mcp(plugin: &str, tool: &str) -> Option<String> {
    let name = format!("{plugin}{SEPARATOR}{}", tool.replace('.', "_"));
    let fits = name.len() <= MAX_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    let reversible = from_mcp(&name).is_some_and(|(p, t)| p == plugin && t == tool);
    (fits && reversible).then_some(name)
}

/// The plugin and tool an MCP tool name stands for, or `None` when it is not of the
/// form `<plugin>__<tool>`.
pub fn from_mcp(name: &str) -> Option<(&str, String)> {
    let at = name.rfind(SEPARATOR)?;
    let (plugin, tool) = (&name[..at], &name[at + SEPARATOR.len()..]);
    if plugin.is_empty() || tool.is_empty() || tool.starts_with('_') {
        return None;
    }
    Some((plugin, tool.replace('_', ".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_and_interface_tools() {
        assert_eq!(
            to_mcp("text", "word-count").as_deref(),
            Some("text__word-count")
        );
        assert_eq!(
            to_mcp("text", "transform.case-convert").as_deref(),
            Some("text__transform_case-convert")
        );
        assert_eq!(
            from_mcp("text__transform_case-convert"),
            Some(("text", "transform.case-convert".to_string()))
        );
    }

    #[test]
    fn plugin_names_with_underscores_map_back() {
        for plugin in ["my_tool", "a__b", "x_", "x__", "_x"] {
            for tool in ["run", "api.get-HTTP", "a1"] {
                let name = to_mcp(plugin, tool).unwrap();
                let (p, t) = from_mcp(&name).unwrap();
                assert_eq!((p, t.as_str()), (plugin, tool), "{name}");
            }
        }
    }

    #[test]
    fn names_without_a_reversible_form_are_refused() {
        assert_eq!(to_mcp("p", "has_underscore"), None);
        assert_eq!(to_mcp("p", ".starts-with-dot"), None);
        assert_eq!(to_mcp("p", "a..b"), None);
        assert_eq!(to_mcp("p", "space here"), None);
        assert_eq!(to_mcp("p", &"x".repeat(126)), None);
        assert!(to_mcp("p", &"x".repeat(125)).is_some());
        assert_eq!(from_mcp("no-separator"), None);
        assert_eq!(from_mcp("__tool"), None);
        assert_eq!(from_mcp("plugin__"), None);
    }
}
