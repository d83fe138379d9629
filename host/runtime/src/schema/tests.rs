//! Schema derivation for every WIT type shape. The types come from a component built from
//! WAT that imports one instance, `tools`, whose functions have the shapes under test;
//! [`func`] is shared with the conversion tests.

use std::sync::LazyLock;

use serde_json::json;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Type};
use wasmtime::{Config, Engine};

use super::*;

const FIXTURE: &str = r#"
(component
  (import "tools" (instance
    (type $units' (enum "metric" "imperial"))
    (export "units" (type $units (eq $units')))
    (type $options' (record (field "max-results" u8) (field "units" $units) (field "tags" (list string))))
    (export "options" (type $options (eq $options')))
    (type $report' (record (field "temp" f64) (field "summary" string)))
    (export "report" (type $report (eq $report')))
    (type $shape' (variant (case "circle" f64) (case "rect" (tuple f64 f64)) (case "none")))
    (export "shape" (type $shape (eq $shape')))
    (type $color' (enum "red" "green" "blue"))
    (export "color" (type $color (eq $color')))
    (type $perms' (flags "read" "write" "exec"))
    (export "perms" (type $perms (eq $perms')))
    (export "res" (type $res (sub resource)))
    (type $conn' (record (field "handle" (own $res))))
    (export "conn" (type $conn (eq $conn')))

    (export "scalars" (func
      (param "b" bool) (param "s8" s8) (param "u8" u8) (param "s16" s16) (param "u16" u16)
      (param "s32" s32) (param "u32" u32) (param "s64" s64) (param "u64" u64)
      (param "f32" f32) (param "f64" f64) (param "c" char) (param "s" string)))
    (export "weather" (func (param "city" string) (param "options" $options)
      (result (result $report (error string)))))
    (export "shapes" (func (param "shape" $shape) (param "items" (list u8))
      (param "pair" (tuple string u32))))
    (export "choose" (func (param "color" $color) (param "perms" $perms)
      (param "maybe" (option u32)) (param "nested" (option (option u32)))))
    (export "outcome" (func (param "r" (result u32 (error string))) (param "unit" (result))
      (result u32)))
    (export "nothing" (func))
    (export "empty-ok" (func (result (result (error string)))))
    (export "connect" (func (param "conn" $conn)))
    (export "open" (func (result (own $res))))
    (export "peek" (func (param "items" (list (borrow $res)))))
  ))
)
"#;

static FIXTURE_COMPONENT: LazyLock<(Engine, Component)> = LazyLock::new(|| {
    let engine = Engine::new(&Config::new()).expect("engine");
    let component = Component::new(&engine, FIXTURE).expect("fixture WAT compiles");
    (engine, component)
});

/// The parameters and result type of the fixture function `name`.
pub(crate) fn func(name: &str) -> (Vec<(String, Type)>, Option<Type>) {
    let (engine, component) = &*FIXTURE_COMPONENT;
    let ty = component.component_type();
    let ComponentItem::ComponentInstance(tools) = ty.get_import(engine, "tools").expect("tools").ty
    else {
        panic!("`tools` is not an instance");
    };
    let Some(ComponentItem::ComponentFunc(f)) = tools.get_export(engine, name).map(|e| e.ty) else {
        panic!("no function {name}");
    };
    let params = f.params().map(|(n, t)| (n.to_owned(), t)).collect();
    let result = f.results().next();
    (params, result)
}

/// The type of parameter `param` of fixture function `name`.
pub(crate) fn param(name: &str, param: &str) -> Type {
    let (params, _) = func(name);
    params
        .into_iter()
        .find(|(n, _)| n == param)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("{name} has no parameter {param}"))
}

fn schema(name: &str, p: &str) -> Value {
    type_schema(&param(name, p)).unwrap()
}

#[test]
fn scalars() {
    let int = |min: i64, max: u64| json!({"type": "integer", "minimum": min, "maximum": max});
    assert_eq!(schema("scalars", "b"), json!({"type": "boolean"}));
    assert_eq!(schema("scalars", "s8"), int(-128, 127));
    assert_eq!(schema("scalars", "u8"), int(0, 255));
    assert_eq!(schema("scalars", "s16"), int(-32768, 32767));
    assert_eq!(schema("scalars", "u16"), int(0, 65535));
    assert_eq!(schema("scalars", "s32"), int(-2147483648, 2147483647));
    assert_eq!(schema("scalars", "u32"), int(0, 4294967295));
    assert_eq!(schema("scalars", "s64"), int(i64::MIN, i64::MAX as u64));
    assert_eq!(schema("scalars", "u64"), int(0, u64::MAX));
    assert_eq!(schema("scalars", "f32"), json!({"type": "number"}));
    assert_eq!(schema("scalars", "f64"), json!({"type": "number"}));
    assert_eq!(
        schema("scalars", "c"),
        json!({"type": "string", "minLength": 1, "maxLength": 1})
    );
    assert_eq!(schema("scalars", "s"), json!({"type": "string"}));
}

#[test]
fn record_with_kebab_case_fields_enum_and_list() {
    assert_eq!(
        schema("weather", "options"),
        json!({
            "type": "object",
            "properties": {
                "max-results": {"type": "integer", "minimum": 0, "maximum": 255},
                "units": {"type": "string", "enum": ["metric", "imperial"]},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["max-results", "units", "tags"],
            "additionalProperties": false,
        })
    );
}

#[test]
fn variant_with_and_without_payloads() {
    let f64 = json!({"type": "number"});
    assert_eq!(
        schema("shapes", "shape"),
        json!({"oneOf": [
            {
                "type": "object",
                "properties": {"tag": {"const": "circle"}, "val": f64},
                "required": ["tag", "val"],
                "additionalProperties": false,
            },
            {
                "type": "object",
                "properties": {"tag": {"const": "rect"}, "val": {
                    "type": "array", "prefixItems": [f64, f64],
                    "minItems": 2, "maxItems": 2, "items": false,
                }},
                "required": ["tag", "val"],
                "additionalProperties": false,
            },
            {
                "type": "object",
                "properties": {"tag": {"const": "none"}},
                "required": ["tag"],
                "additionalProperties": false,
            },
        ]})
    );
}

#[test]
fn tuple_and_list() {
    assert_eq!(
        schema("shapes", "pair"),
        json!({
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "integer", "minimum": 0, "maximum": 4294967295_u32}],
            "minItems": 2,
            "maxItems": 2,
            "items": false,
        })
    );
    assert_eq!(
        schema("shapes", "items"),
        json!({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}})
    );
}

#[test]
fn enum_flags_and_options() {
    assert_eq!(
        schema("choose", "color"),
        json!({"type": "string", "enum": ["red", "green", "blue"]})
    );
    assert_eq!(
        schema("choose", "perms"),
        json!({
            "type": "array",
            "items": {"type": "string", "enum": ["read", "write", "exec"]},
            "uniqueItems": true,
        })
    );
    let u32 = json!({"type": "integer", "minimum": 0, "maximum": 4294967295_u32});
    let none = json!({"type": "null"});
    assert_eq!(schema("choose", "maybe"), json!({"anyOf": [u32, none]}));
    assert_eq!(
        schema("choose", "nested"),
        json!({"anyOf": [{"anyOf": [u32, none]}, none]})
    );
}

#[test]
fn results_as_values() {
    let branch = |name: &str, schema: Value| {
        json!({
            "type": "object",
            "properties": {name: schema},
            "required": [name],
            "additionalProperties": false,
        })
    };
    let u32 = json!({"type": "integer", "minimum": 0, "maximum": 4294967295_u32});
    let none = json!({"type": "null"});
    assert_eq!(
        schema("outcome", "r"),
        json!({"oneOf": [branch("ok", u32), branch("err", json!({"type": "string"}))]})
    );
    assert_eq!(
        schema("outcome", "unit"),
        json!({"oneOf": [branch("ok", none.clone()), branch("err", none)]})
    );
}

#[test]
fn input_schema_is_a_closed_object_of_parameters() {
    let (params, _) = func("weather");
    let schema = input_schema(&params).unwrap();
    assert_eq!(schema["$schema"], DIALECT);
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["city", "options"]));
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["properties"]["city"], json!({"type": "string"}));
    assert_eq!(
        schema["properties"]["options"]["required"],
        json!(["max-results", "units", "tags"])
    );

    let (none, _) = func("nothing");
    assert_eq!(
        input_schema(&none).unwrap(),
        json!({
            "$schema": DIALECT,
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": false,
        })
    );
}

#[test]
fn output_schema_of_a_result_is_its_ok_type() {
    let (_, result) = func("weather");
    let schema = output_schema(result.as_ref()).unwrap();
    assert_eq!(schema["$schema"], DIALECT);
    assert_eq!(schema["required"], json!(["temp", "summary"]));

    let (_, result) = func("empty-ok");
    assert_eq!(
        output_schema(result.as_ref()).unwrap(),
        json!({"$schema": DIALECT, "type": "null"})
    );

    let (_, result) = func("outcome");
    assert_eq!(
        output_schema(result.as_ref()).unwrap(),
        json!({"$schema": DIALECT, "type": "integer", "minimum": 0, "maximum": 4294967295_u32})
    );

    let (_, result) = func("nothing");
    assert_eq!(result, None);
    assert_eq!(
        output_schema(None).unwrap(),
        json!({"$schema": DIALECT, "type": "null"})
    );
}

#[test]
fn resources_are_unsupported_and_say_where() {
    let (params, _) = func("connect");
    let err = input_schema(&params).unwrap_err();
    assert_eq!(
        err,
        Unsupported {
            path: "conn.handle".into(),
            ty: "own<resource>"
        }
    );
    assert_eq!(
        err.to_string(),
        "own<resource> at \"conn.handle\" has no JSON form; a tool takes and returns plain data \
         (no resources, futures, streams or error-contexts)"
    );

    let (params, _) = func("peek");
    let err = input_schema(&params).unwrap_err();
    assert_eq!(
        err,
        Unsupported {
            path: "items[]".into(),
            ty: "borrow<resource>"
        }
    );

    let (_, result) = func("open");
    let err = output_schema(result.as_ref()).unwrap_err();
    assert_eq!(
        err,
        Unsupported {
            path: "<return>".into(),
            ty: "own<resource>"
        }
    );

    let err = type_schema(&param("connect", "conn")).unwrap_err();
    assert_eq!(err.path, "handle");
}
