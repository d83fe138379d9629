//! Fuzzing JSON → component values with generated JSON (proptest), against every
//! shape of the WAT fixture of `schema::tests` (scalars, records, variants, enums,
//! flags, options, results, lists, resources): arguments are converted or refused with
//! an error, never a panic, and what converts comes back as the same JSON.
//! `PROPTEST_CASES=100000 cargo test -p warden-runtime fuzz` runs long; CI runs the
//! default 256 cases a target.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{args_from_json, val_to_json};
use crate::schema::tests::func;

const FUNCTIONS: [&str; 10] = [
    "scalars", "weather", "shapes", "choose", "outcome", "nothing", "empty-ok", "connect", "open",
    "peek",
];

/// JSON of any shape, with the names and tags the fixture uses among random ones.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z-]{0,8}|ok|err|tag|val|red|green|circle|read|write|x".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                "city|options|units|shape|items|color|perms|r|unit|conn|tag|val|ok|err|[a-z]{1,6}",
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #[test]
    fn fuzz_arguments_convert_or_refuse_and_come_back_the_same(
        which in 0..FUNCTIONS.len(),
        args in proptest::collection::btree_map(
            "city|options|shape|items|color|perms|r|unit|conn|a|b|[a-z]{1,5}",
            json(),
            0..5,
        ),
    ) {
        let (params, _) = func(FUNCTIONS[which]);
        let args = Value::Object(args.into_iter().collect());
        if let Ok(vals) = args_from_json(&args, &params) {
            prop_assert_eq!(vals.len(), params.len());
            // Back to JSON and in again: the same values.
            let back: Map<String, Value> = params
                .iter()
                .zip(&vals)
                .map(|((name, _), val)| (name.clone(), val_to_json(val)))
                .collect();
            let again = args_from_json(&Value::Object(back), &params);
            prop_assert!(again.is_ok(), "{args} → {again:?}");
            prop_assert_eq!(again.unwrap(), vals);
        }
    }
}
