//! Every error path of the mapping, with the exact message.

use serde_json::json;

use super::*;

#[test]
fn integers_accept_whole_floats_only() {
    let u32 = param("scalars", "u32");
    assert_eq!(json_to_val(&json!(2.0), &u32, "n").unwrap(), Val::U32(2));
    assert_eq!(
        error_for("scalars", "u32", json!(1.5)),
        "argument \"u32\": expected u32 (0..=4294967295), got 1.5"
    );
    assert_eq!(
        error_for("scalars", "s64", json!(1e300)),
        "argument \"s64\": expected s64 (-9223372036854775808..=9223372036854775807), got 1e+300"
    );
}

#[test]
fn integers_are_range_checked() {
    assert_eq!(
        error_for("scalars", "u8", json!(300)),
        "argument \"u8\": expected u8 (0..=255), got 300"
    );
    assert_eq!(
        error_for("scalars", "s8", json!(-129)),
        "argument \"s8\": expected s8 (-128..=127), got -129"
    );
    assert_eq!(
        error_for("scalars", "u64", json!(-1)),
        "argument \"u64\": expected u64 (0..=18446744073709551615), got -1"
    );
    assert_eq!(
        error_for("scalars", "s64", json!(u64::MAX)),
        "argument \"s64\": expected s64 (-9223372036854775808..=9223372036854775807), \
         got 18446744073709551615"
    );
    assert_eq!(
        error_for("scalars", "u16", json!("7")),
        "argument \"u16\": expected u16 (0..=65535), got \"7\""
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        error_for("scalars", "b", json!(1)),
        "argument \"b\": expected bool (true or false), got 1"
    );
    assert_eq!(
        error_for("scalars", "s", json!(5)),
        "argument \"s\": expected string, got 5"
    );
    assert_eq!(
        error_for("shapes", "items", json!({"a": 1})),
        "argument \"items\": expected list (an array), got an object with keys \"a\""
    );
    assert_eq!(
        error_for("weather", "options", json!([])),
        "argument \"options\": expected record (an object with fields \"max-results\", \"units\", \"tags\"), \
         got an empty array"
    );
    assert_eq!(
        error_for("choose", "maybe", json!("x")),
        "argument \"maybe\": expected u32 (0..=4294967295), got \"x\""
    );
    assert_eq!(
        error_for("choose", "perms", json!("read")),
        "argument \"perms\": expected flags (an array of \"read\", \"write\", \"exec\"), got \"read\""
    );
    let long = "x".repeat(100);
    assert_eq!(
        error_for("scalars", "u8", json!(long)),
        format!(
            "argument \"u8\": expected u8 (0..=255), got \"{}\"…",
            "x".repeat(40)
        )
    );
}

#[test]
fn char_must_be_one_character() {
    let message =
        |got: &str| format!("argument \"c\": expected char (a one-character string), got {got}");
    assert_eq!(error_for("scalars", "c", json!("ab")), message("\"ab\""));
    assert_eq!(error_for("scalars", "c", json!("")), message("\"\""));
}

#[test]
fn nested_paths_name_the_value() {
    let mut opts = options();
    opts["max-results"] = json!(300);
    assert_eq!(
        args_error("weather", json!({"city": "Oslo", "options": opts})),
        "argument \"options.max-results\": expected u8 (0..=255), got 300"
    );
    assert_eq!(
        error_for("shapes", "items", json!([1, 2, 300])),
        "argument \"items[2]\": expected u8 (0..=255), got 300"
    );
    assert_eq!(
        error_for("shapes", "pair", json!(["x", -1])),
        "argument \"pair[1]\": expected u32 (0..=4294967295), got -1"
    );
    assert_eq!(
        error_for("shapes", "shape", json!({"tag": "circle", "val": "big"})),
        "argument \"shape.val\": expected f64 (a number), got \"big\""
    );
    assert_eq!(
        error_for("outcome", "r", json!({"err": 5})),
        "argument \"r.err\": expected string, got 5"
    );
    assert_eq!(
        json_to_val(&json!([1, 300]), &param("shapes", "items"), "")
            .unwrap_err()
            .to_string(),
        "argument \"[1]\": expected u8 (0..=255), got 300"
    );
}

#[test]
fn record_fields_unknown_and_missing() {
    let mut opts = options();
    opts["extra"] = json!(1);
    assert_eq!(
        error_for("weather", "options", opts),
        "argument \"options\": unknown field \"extra\" (fields: \"max-results\", \"units\", \"tags\")"
    );
    let mut opts = options();
    opts.as_object_mut().unwrap().remove("tags");
    assert_eq!(
        error_for("weather", "options", opts),
        "argument \"options\": missing field \"tags\" (fields: \"max-results\", \"units\", \"tags\")"
    );
}

#[test]
fn enum_unknown_case_lists_the_cases() {
    assert_eq!(
        error_for("choose", "color", json!("purple")),
        "argument \"color\": unknown case \"purple\" (cases: \"red\", \"green\", \"blue\")"
    );
    let mut opts = options();
    opts["units"] = json!("kelvin");
    assert_eq!(
        error_for("weather", "options", opts),
        "argument \"options.units\": unknown case \"kelvin\" (cases: \"metric\", \"imperial\")"
    );
}

#[test]
fn flags_unknown_flag() {
    assert_eq!(
        error_for("choose", "perms", json!(["read", "fly"])),
        "argument \"perms[1]\": unknown flag \"fly\" (flags: \"read\", \"write\", \"exec\")"
    );
    assert_eq!(
        error_for("choose", "perms", json!([true])),
        "argument \"perms[0]\": unknown flag true (flags: \"read\", \"write\", \"exec\")"
    );
}

#[test]
fn variant_errors() {
    let shape = |v: Value| error_for("shapes", "shape", v);
    let cases = "(cases: \"circle\", \"rect\", \"none\")";
    assert_eq!(
        shape(json!({"tag": "hexagon"})),
        format!("argument \"shape.tag\": unknown case \"hexagon\" {cases}")
    );
    assert_eq!(
        shape(json!({"tag": 1})),
        "argument \"shape.tag\": expected one of \"circle\", \"rect\", \"none\", got 1"
    );
    assert_eq!(
        shape(json!({"val": 1.0})),
        format!("argument \"shape\": missing \"tag\" {cases}")
    );
    assert_eq!(
        shape(json!({"tag": "none", "val": 1})),
        "argument \"shape.val\": case \"none\" has no payload; leave \"val\" out"
    );
    assert_eq!(
        shape(json!({"tag": "none", "val": null})),
        "argument \"shape.val\": case \"none\" has no payload; leave \"val\" out"
    );
    assert_eq!(
        shape(json!({"tag": "circle"})),
        "argument \"shape\": case \"circle\" needs \"val\": f64 (a number)"
    );
    assert_eq!(
        shape(json!({"tag": "circle", "val": 1.0, "radius": 2})),
        "argument \"shape\": unknown key \"radius\" (a variant has \"tag\" and \"val\")"
    );
    assert_eq!(
        shape(json!("circle")),
        format!(
            "argument \"shape\": expected variant (an object {{\"tag\": …, \"val\": …}}, tag one of \
             \"circle\", \"rect\", \"none\"), got \"circle\""
        )
    );
}

#[test]
fn tuple_length_is_checked() {
    assert_eq!(
        error_for("shapes", "pair", json!(["x"])),
        "argument \"pair\": expected tuple (an array of 2 items), got an array of 1 item"
    );
    assert_eq!(
        error_for("shapes", "pair", json!(["x", 1, 2])),
        "argument \"pair\": expected tuple (an array of 2 items), got an array of 3 items"
    );
}

#[test]
fn result_needs_exactly_one_of_ok_or_err() {
    let expected = "expected result (an object {\"ok\": …} or {\"err\": …})";
    assert_eq!(
        error_for("outcome", "r", json!({"ok": 1, "err": "x"})),
        format!("argument \"r\": {expected}, got an object with keys \"ok\", \"err\"")
    );
    assert_eq!(
        error_for("outcome", "r", json!({"value": 1})),
        format!("argument \"r\": {expected}, got an object with keys \"value\"")
    );
    assert_eq!(
        error_for("outcome", "r", json!({})),
        format!("argument \"r\": {expected}, got an empty object")
    );
    assert_eq!(
        error_for("outcome", "unit", json!({"ok": 1})),
        "argument \"unit.ok\": expected null (this result has no ok value), got 1"
    );
}

#[test]
fn arguments_must_be_an_object_of_the_parameters() {
    assert_eq!(
        args_error("weather", json!([1])),
        "arguments: expected an object with the parameters \"city\", \"options\", got an array of 1 item"
    );
    assert_eq!(
        args_error("weather", json!(null)),
        "arguments: expected an object with the parameters \"city\", \"options\", got null"
    );
    assert_eq!(
        args_error(
            "weather",
            json!({"city": "Oslo", "options": options(), "town": "x"})
        ),
        "arguments: unknown parameter \"town\" (parameters: \"city\", \"options\")"
    );
    assert_eq!(
        args_error("weather", json!({"city": "Oslo"})),
        "arguments: missing parameter \"options\" (parameters: \"city\", \"options\")"
    );
    let err = args_from_json(&json!({"city": "Oslo"}), &func("weather").0).unwrap_err();
    assert_eq!(err.path, "");
    assert_eq!(
        err.message,
        "missing parameter \"options\" (parameters: \"city\", \"options\")"
    );
}

#[test]
fn no_parameters_take_null_or_an_empty_object() {
    let (params, _) = func("nothing");
    assert_eq!(args_from_json(&json!(null), &params).unwrap(), vec![]);
    assert_eq!(args_from_json(&json!({}), &params).unwrap(), vec![]);
    assert_eq!(
        args_error("nothing", json!([])),
        "arguments: expected no arguments (an empty object), got an empty array"
    );
    assert_eq!(
        args_error("nothing", json!({"x": 1})),
        "arguments: unknown parameter \"x\"; this tool takes no arguments"
    );
}

#[test]
fn resources_cannot_be_given_as_json() {
    assert_eq!(
        args_error("connect", json!({"conn": {"handle": 1}})),
        "argument \"conn.handle\": own<resource> values cannot be given as JSON"
    );
}
