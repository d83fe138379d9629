//! What an operator or an author writes: grants, plugin manifests and the home's
//! `warden.toml`, as text. A parser refuses with an error or accepts; a grant it
//! accepts is written back as TOML that reads as the same grant.

use warden_config::grant::Grant;
use warden_config::home::Config;
use warden_config::manifest::Manifest;

/// `Grant::parse`, and `to_toml` of what it accepts read back.
pub fn grant(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(grant) = Grant::parse(text, "p") {
        let written = grant.to_toml();
        match Grant::parse(&written, "p") {
            Ok(again) => assert_eq!(again, grant, "{text:?} was written as {written:?}"),
            Err(err) => panic!("{text:?} was written as {written:?}, which does not parse: {err}"),
        }
    }
}

/// `Manifest::parse`.
pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::parse(text);
    }
}

/// `Config::parse` (the home's `warden.toml`).
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text, "fuzz");
    }
}
