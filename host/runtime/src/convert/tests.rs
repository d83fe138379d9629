//! JSON ↔ value round trips for every shape, and every error path of the mapping, with
//! the exact messages people and models read. Types come from the WAT fixture in
//! `schema::tests`.

use serde_json::json;

use super::*;
use crate::schema::tests::{func, param};

/// Converts `args` for fixture function `name` and back; the JSON must come back unchanged.
fn round_trip(name: &str, args: Value) -> Vec<Val> {
    let (params, _) = func(name);
    let vals = args_from_json(&args, &params).unwrap();
    let back: Map<String, Value> = params
        .iter()
        .zip(&vals)
        .map(|((name, _), val)| (name.clone(), val_to_json(val)))
        .collect();
    assert_eq!(Value::Object(back), args);
    vals
}

/// The error message for converting `value` to parameter `p` of function `name`.
fn error_for(name: &str, p: &str, value: Value) -> String {
    json_to_val(&value, &param(name, p), p)
        .unwrap_err()
        .to_string()
}

/// The error message for calling fixture function `name` with `args`.
fn args_error(name: &str, args: Value) -> String {
    args_from_json(&args, &func(name).0)
        .unwrap_err()
        .to_string()
}

fn options() -> Value {
    json!({"max-results": 10, "units": "metric", "tags": ["a", "b"]})
}

#[test]
fn scalars_round_trip() {
    round_trip(
        "scalars",
        json!({
            "b": true, "s8": -128, "u8": 255, "s16": -32768, "u16": 65535,
            "s32": i32::MIN, "u32": u32::MAX, "s64": i64::MIN, "u64": u64::MAX,
            "f32": 1.5, "f64": -0.25, "c": "é", "s": "hello",
        }),
    );
}

#[test]
fn record_variant_tuple_list_round_trip() {
    let vals = round_trip("weather", json!({"city": "Oslo", "options": options()}));
    let Val::Record(fields) = &vals[1] else {
        panic!("not a record: {vals:?}")
    };
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["max-results", "units", "tags"]);

    for shape in [
        json!({"tag": "circle", "val": 2.5}),
        json!({"tag": "rect", "val": [1.0, 2.0]}),
        json!({"tag": "none"}),
    ] {
        round_trip(
            "shapes",
            json!({"shape": shape, "items": [1, 2, 3], "pair": ["x", 7]}),
        );
    }
    let vals = round_trip(
        "shapes",
        json!({"shape": {"tag": "none"}, "items": [], "pair": ["", 0]}),
    );
    assert_eq!(vals[0], Val::Variant("none".into(), None));
}

#[test]
fn enum_flags_option_result_round_trip() {
    let vals = round_trip(
        "choose",
        json!({"color": "green", "perms": ["read", "exec"], "maybe": 5, "nested": 6}),
    );
    assert_eq!(vals[1], Val::Flags(vec!["read".into(), "exec".into()]));
    assert_eq!(
        vals[3],
        Val::Option(Some(Box::new(Val::Option(Some(Box::new(Val::U32(6)))))))
    );
    let vals = round_trip(
        "choose",
        json!({"color": "red", "perms": [], "maybe": null, "nested": null}),
    );
    assert_eq!(vals[2], Val::Option(None));
    assert_eq!(vals[3], Val::Option(None));

    round_trip("outcome", json!({"r": {"ok": 3}, "unit": {"ok": null}}));
    let vals = round_trip(
        "outcome",
        json!({"r": {"err": "bad"}, "unit": {"err": null}}),
    );
    assert_eq!(vals[1], Val::Result(Err(None)));
}

#[test]
fn flags_are_read_in_any_order_and_written_in_declaration_order() {
    let val = json_to_val(
        &json!(["exec", "read", "exec"]),
        &param("choose", "perms"),
        "perms",
    );
    assert_eq!(val_to_json(&val.unwrap()), json!(["read", "exec"]));
}

#[test]
fn floats_non_finite_values_are_strings() {
    assert_eq!(val_to_json(&Val::Float64(f64::NAN)), json!("NaN"));
    assert_eq!(val_to_json(&Val::Float32(f32::INFINITY)), json!("Infinity"));
    assert_eq!(
        val_to_json(&Val::Float64(f64::NEG_INFINITY)),
        json!("-Infinity")
    );
    let f32 = param("scalars", "f32");
    let Val::Float32(x) = json_to_val(&json!("NaN"), &f32, "x").unwrap() else {
        panic!()
    };
    assert!(x.is_nan());
    assert_eq!(
        json_to_val(&json!("-Infinity"), &f32, "x").unwrap(),
        Val::Float32(f32::NEG_INFINITY)
    );
    assert_eq!(
        error_for("scalars", "f32", json!(1e300)),
        "argument \"f32\": expected f32, got 1e+300 (too large for f32)"
    );
    assert_eq!(
        error_for("scalars", "f64", json!("inf")),
        "argument \"f64\": expected f64 (a number), got \"inf\""
    );
}

#[test]
fn u64_stays_an_exact_number() {
    let json = val_to_json(&Val::U64(u64::MAX));
    assert_eq!(json.as_u64(), Some(u64::MAX));
    assert_eq!(json.to_string(), "18446744073709551615");
}

#[test]
fn nested_option_some_none_is_written_as_null() {
    let some_none = Val::Option(Some(Box::new(Val::Option(None))));
    assert_eq!(val_to_json(&some_none), json!(null));
}

#[test]
fn values_without_a_fixture_type_convert_to_json() {
    let map = Val::Map(vec![(Val::String("a".into()), Val::U32(1))]);
    assert_eq!(val_to_json(&map), json!([{"key": "a", "value": 1}]));
    assert_eq!(
        val_to_json(&Val::FixedLengthList(vec![Val::U8(1), Val::U8(2)])),
        json!([1, 2])
    );
    assert_eq!(val_to_json(&Val::Char('x')), json!("x"));
}

#[test]
fn tool_output_unwraps_a_result() {
    let ok = |v: Option<Val>| Val::Result(Ok(v.map(Box::new)));
    let err = |v: Option<Val>| Val::Result(Err(v.map(Box::new)));
    assert_eq!(tool_output(&[]), Ok(json!(null)));
    assert_eq!(tool_output(&[ok(Some(Val::U32(3)))]), Ok(json!(3)));
    assert_eq!(tool_output(&[ok(None)]), Ok(json!(null)));
    assert_eq!(
        tool_output(&[err(Some(Val::String("bad".into())))]),
        Err(json!("bad"))
    );
    assert_eq!(tool_output(&[err(None)]), Err(json!(null)));
    assert_eq!(tool_output(&[Val::Bool(true)]), Ok(json!(true)));
    let nested = Val::Option(Some(Box::new(ok(Some(Val::U8(1))))));
    assert_eq!(tool_output(&[nested]), Ok(json!({"ok": 1})));
}

/// `map` and fixed-length lists are behind wasm features of their own.
fn proposal_types() -> Vec<(String, Type)> {
    use wasmtime::component::types::ComponentItem;
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model_map(true)
        .wasm_component_model_fixed_length_lists(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let wat =
        r#"(component (import "f" (func (param "m" (map string u32)) (param "rgb" (list u8 3)))))"#;
    let component = wasmtime::component::Component::new(&engine, wat).unwrap();
    let Some(ComponentItem::ComponentFunc(f)) = component
        .component_type()
        .get_import(&engine, "f")
        .map(|e| e.ty)
    else {
        panic!("no import f");
    };
    f.params().map(|(n, t)| (n.to_owned(), t)).collect()
}

#[test]
fn map_and_fixed_length_list() {
    let params = proposal_types();
    let args = json!({"m": [{"key": "a", "value": 1}, {"key": "b", "value": 2}], "rgb": [1, 2, 3]});
    let vals = args_from_json(&args, &params).unwrap();
    assert_eq!(
        json!({"m": val_to_json(&vals[0]), "rgb": val_to_json(&vals[1])}),
        args
    );

    let schema = crate::schema::input_schema(&params).unwrap();
    assert_eq!(
        schema["properties"]["m"]["items"]["required"],
        json!(["key", "value"])
    );
    assert_eq!(schema["properties"]["rgb"]["minItems"], 3);
    assert_eq!(schema["properties"]["rgb"]["maxItems"], 3);

    let err = |args| args_from_json(&args, &params).unwrap_err().to_string();
    assert_eq!(
        err(json!({"m": [{"key": "a"}], "rgb": [1, 2, 3]})),
        "argument \"m[0]\": expected a map entry {\"key\": …, \"value\": …}, got an object with keys \"key\""
    );
    assert_eq!(
        err(json!({"m": [{"key": 1, "value": 1}], "rgb": [1, 2, 3]})),
        "argument \"m[0].key\": expected string, got 1"
    );
    assert_eq!(
        err(json!({"m": [], "rgb": [1, 2]})),
        "argument \"rgb\": expected list of 3 (an array of 3 items), got an array of 2 items"
    );
}

mod errors;

#[test]
fn the_size_bound_never_passes_the_jsons_size_and_stops_early() {
    let vals = [
        Val::Bool(true),
        Val::U64(12345),
        Val::Float64(-1.5),
        Val::Char('é'),
        Val::String("a \"quoted\" line\n".into()),
        Val::List(vec![Val::U8(1), Val::U8(200), Val::U8(3)]),
        Val::List(Vec::new()),
        Val::Tuple(vec![Val::S8(-1), Val::String(String::new())]),
        Val::Record(vec![
            ("name".into(), Val::String("x".into())),
            ("tags".into(), Val::Flags(vec!["a".into(), "bc".into()])),
        ]),
        Val::Variant("some-case".into(), Some(Box::new(Val::U32(7)))),
        Val::Variant("none".into(), None),
        Val::Enum("red".into()),
        Val::Option(None),
        Val::Option(Some(Box::new(Val::U16(9)))),
        Val::Result(Ok(None)),
        Val::Result(Err(Some(Box::new(Val::String("no".into()))))),
    ];
    for val in &vals {
        let exact = serde_json::to_vec(&val_to_json(val)).unwrap().len();
        let bound = json_size_at_most(val, usize::MAX).unwrap();
        assert!(bound <= exact, "{val:?}: bound {bound} > JSON size {exact}");
        assert!(bound > 0, "{val:?}");
    }
    // A million bytes pass a 1 KiB limit within its first thousand or so.
    let big = Val::List(vec![Val::U8(0); 1_000_000]);
    assert_eq!(json_size_at_most(&big, 1024), None);
    assert!(json_size_at_most(&big, usize::MAX).unwrap() >= 1_999_999);
}
