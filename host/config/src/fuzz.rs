//! Fuzzing what an operator or an author writes (grants, manifests, the home's
//! `warden.toml`, Wassette policies) with generated input (proptest): a parser refuses
//! with an error, never panics, and what it accepts it writes back so that it reads
//! the same. `PROPTEST_CASES=100000 cargo test -p warden-config fuzz` runs long; CI
//! runs the default 256 cases a target.

use proptest::prelude::*;

use crate::grant::Grant;
use crate::home::Config;
use crate::manifest::Manifest;

/// TOML-shaped text from the keys these files use, and arbitrary text.
fn toml_text() -> impl Strategy<Value = String> {
    let key = "(plugin|digest|fs|host|guest|access|net|allow|max_response_kb|env|vars|secrets|header|from_env|from_file|prefix|memory|models|routes|budget|tokens_per_day|cost_per_day|tools|agent|limits|memory_mb|timeout_ms|fuel|max_output_kb|max_concurrency|annotations|read_only|destructive|name|version|description|server|listen|tokens|roles|policy|audit|keep_content|checkpoint_every|providers|kind|base_url|targets)";
    let value = "(\"[ -~]{0,24}\"|-?[0-9]{1,12}|true|false|\\[\\]|\\[\"[a-z:/.*0-9]{0,20}\"\\]|\\{\\}|[0-9.e+-]{1,8})";
    let regex =
        |pattern: String| proptest::string::string_regex(&pattern).expect("a valid pattern");
    let line = prop_oneof![
        regex(format!("{key} = {value}")),
        regex(format!("\\[{key}(\\.{key})?\\]")),
        regex(format!("\\[\\[{key}\\]\\]")),
        regex("[ -~]{0,30}".to_string()),
    ];
    prop_oneof![
        proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n")),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn fuzz_grants_parse_or_refuse_and_write_back_the_same(text in toml_text()) {
        if let Ok(grant) = Grant::parse(&text, "p") {
            let written = grant.to_toml();
            let again = Grant::parse(&written, "p");
            prop_assert!(again.is_ok(), "{text:?} → {written:?}: {again:?}");
            prop_assert_eq!(again.unwrap(), grant);
        }
    }

    #[test]
    fn fuzz_manifests_and_home_configs_parse_or_refuse(text in toml_text()) {
        let _ = Manifest::parse(&text);
        let _ = Config::parse(&text, "fuzz");
    }
}
