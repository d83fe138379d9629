//! A plain `tools/call`, read at once into its parts: the request that matters for
//! speed, on stdio (`lines`) and over HTTP (`direct`), without rmcp's decoding of a
//! message through its generic enum. Each says what else makes a call plain.

use std::borrow::Cow;

use rmcp::model::{JsonObject, JsonRpcVersion2_0, RequestId};
use serde::{Deserialize, Deserializer};

/// A `tools/call`'s members and no others, with `_meta` only if it reads as `M`
/// ([`NoMeta`]: none at all). Its method is still to be checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "M: Deserialize<'de>"))]
pub(super) struct PlainCall<'a, M> {
    pub(super) jsonrpc: JsonRpcVersion2_0,
    pub(super) id: RequestId,
    #[serde(borrow)]
    pub(super) method: Cow<'a, str>,
    pub(super) params: PlainParams<M>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "M: Deserialize<'de>"))]
pub(super) struct PlainParams<M> {
    pub(super) name: String,
    #[serde(default)]
    pub(super) arguments: Option<JsonObject>,
    /// Absent, or an `M` (`null` is neither).
    #[serde(
        rename = "_meta",
        default = "Option::default",
        deserialize_with = "present"
    )]
    pub(super) meta: Option<M>,
}

/// `_meta` is not read: a call that has one is not plain.
#[derive(Deserialize)]
pub(super) enum NoMeta {}

fn present<'de, D: Deserializer<'de>, M: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<M>, D::Error> {
    M::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads<M: for<'de> Deserialize<'de>>(json: &str) -> bool {
        serde_json::from_str::<PlainCall<M>>(json).is_ok()
    }

    #[test]
    fn no_meta_means_none() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__b"}}"#;
        assert!(reads::<NoMeta>(call));
        for meta in [r#"{}"#, r#"{"progressToken":1}"#, "null"] {
            let with = call.replace(r#""a__b""#, &format!(r#""a__b","_meta":{meta}"#));
            assert!(!reads::<NoMeta>(&with), "{with}");
        }
        #[derive(Deserialize)]
        struct Meta {}
        let with = call.replace(r#""a__b""#, r#""a__b","_meta":null"#);
        assert!(!reads::<Meta>(&with), "null is not a _meta");
        let with = call.replace(r#""a__b""#, r#""a__b","_meta":{}"#);
        assert!(reads::<Meta>(&with));
    }
}
