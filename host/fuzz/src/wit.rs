//! JSON ↔ component values against arbitrary WIT types. The input makes a WIT package
//! (wit-smith); a world exporting its interfaces, or one of its own worlds, becomes a
//! component (`dummy_module` and
//! `ComponentEncoder`, as `wasm-tools component embed --dummy` does), which Warden's
//! engine compiles and whose tools [`warden_runtime::tools::discover`] finds, with
//! their JSON Schemas. Then JSON for each tool's parameters, made from the rest of the
//! input, goes through [`args_from_json`]: it converts or is refused with an error,
//! never a panic, and what converts, written back with [`val_to_json`], converts
//! again to the same values.

use std::sync::OnceLock;

use arbitrary::Unstructured;
use serde_json::{Map, Value};
use warden_runtime::convert::{args_from_json, val_to_json};
use warden_runtime::tools::{ExtraDocs, discover};
use wasmtime::component::Component;
use wit_component::{ComponentEncoder, DecodedWasm, StringEncoding};
use wit_parser::{ManglingAndAbi, PackageId, Resolve, WorldId, WorldItem};

use crate::json;

/// The engine of a Warden runtime: its settings decide which types compile.
fn engine() -> &'static wasmtime::Engine {
    static RUNTIME: OnceLock<warden_runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| warden_runtime::Runtime::new().expect("a runtime"))
        .engine()
}

pub fn json_to_wit(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(config) = smith_config(&mut u) else {
        return;
    };
    let Ok(wit) = wit_smith::smith(&config, &mut u) else {
        return;
    };
    let Ok(DecodedWasm::WitPackage(mut resolve, package)) = wit_component::decode(&wit) else {
        return;
    };
    without_external_ids(&mut resolve);
    let Ok(Some(world)) = world(&mut u, &mut resolve, package) else {
        return;
    };
    let mut module = wit_component::dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    if wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .is_err()
    {
        return;
    }
    let Ok(bytes) = ComponentEncoder::default()
        .module(&module)
        .and_then(|mut encoder| encoder.encode())
    else {
        return;
    };
    // A type the engine does not support is refused here.
    let Ok(component) = Component::new(engine(), &bytes) else {
        return;
    };
    let (tools, _) = discover(engine(), &component, None, &ExtraDocs::default());
    for tool in &tools {
        let params = tool.params();
        let Ok(args) = arguments(&mut u, params) else {
            return;
        };
        let Ok(vals) = args_from_json(&args, params) else {
            continue;
        };
        assert_eq!(vals.len(), params.len(), "{}: {args}", tool.signature);
        let back: Map<String, Value> = params
            .iter()
            .zip(&vals)
            .map(|((name, _), val)| (name.clone(), val_to_json(val)))
            .collect();
        let back = Value::Object(back);
        match args_from_json(&back, params) {
            Ok(again) => {
                let again: Vec<Value> = again.iter().map(val_to_json).collect();
                let vals: Vec<Value> = vals.iter().map(val_to_json).collect();
                assert_eq!(again, vals, "{}: {args} → {back}", tool.signature);
            }
            Err(err) => panic!(
                "{}: {args} converted, and came back as {back}, which does not: {err}",
                tool.signature
            ),
        }
    }
}

/// wit-smith marks items `@external-id(…)`, a component-model extension wasmtime 48
/// does not take (`cm-implements`): off, so that those worlds compile too.
fn without_external_ids(resolve: &mut Resolve) {
    for (_, interface) in resolve.interfaces.iter_mut() {
        for function in interface.functions.values_mut() {
            function.external_id = None;
        }
    }
    for (_, ty) in resolve.types.iter_mut() {
        ty.external_id = None;
    }
    for (_, world) in resolve.worlds.iter_mut() {
        for item in world.imports.values_mut().chain(world.exports.values_mut()) {
            match item {
                WorldItem::Interface { external_id, .. } => *external_id = None,
                WorldItem::Function(function) => function.external_id = None,
                WorldItem::Type { .. } => {}
            }
        }
    }
}

/// A world that exports most interfaces with functions (wit-smith's own worlds
/// export few), or one of wit-smith's worlds.
fn world(
    u: &mut Unstructured<'_>,
    resolve: &mut Resolve,
    package: PackageId,
) -> arbitrary::Result<Option<WorldId>> {
    let mut exports = String::new();
    for (id, interface) in resolve.interfaces.iter() {
        if !interface.functions.is_empty()
            && let Some(name) = resolve.id_of(id)
            && !u.ratio(1, 4)?
        {
            exports.push_str(&format!("    export {name};\n"));
        }
    }
    if exports.is_empty() || u.ratio(1, 4)? {
        let worlds: Vec<_> = resolve.packages[package].worlds.values().copied().collect();
        return Ok(u.choose(&worlds).ok().copied());
    }
    let text = format!("package warden:fuzz;\n\nworld tools {{\n{exports}}}\n");
    // Some sets cannot be exported together (an interface both imported and
    // exported): no world.
    let Ok(tools) = resolve.push_str("tools.wit", &text) else {
        return Ok(None);
    };
    Ok(resolve.packages[tools].worlds.get("tools").copied())
}

/// Small worlds, so that compiling one takes milliseconds.
fn smith_config(u: &mut Unstructured<'_>) -> arbitrary::Result<wit_smith::Config> {
    Ok(wit_smith::Config {
        max_packages: u.int_in_range(1..=3)?,
        max_files_per_package: u.int_in_range(1..=2)?,
        max_type_size: u.int_in_range(0..=60)?,
        max_interface_items: u.int_in_range(0..=8)?,
        max_world_items: u.int_in_range(1..=6)?,
        max_pkg_items: u.int_in_range(1..=4)?,
        max_type_parts: u.int_in_range(1..=6)?,
        max_resource_items: u.int_in_range(0..=3)?,
        // Types a tool may not take are refused by name; these reach that refusal.
        futures: u.ratio(1, 8)?,
        streams: u.ratio(1, 8)?,
        error_context: u.ratio(1, 8)?,
        fixed_length_lists: u.ratio(1, 4)?,
        ..wit_smith::Config::default()
    })
}

/// Arguments for `params`: an object keyed by their names (sometimes one left out or
/// one added), or, rarely, any JSON.
fn arguments(
    u: &mut Unstructured<'_>,
    params: &[(String, wasmtime::component::Type)],
) -> arbitrary::Result<Value> {
    if u.ratio(1, 32)? {
        return json::any(u, 0);
    }
    let mut object = Map::new();
    for (name, ty) in params {
        if !u.ratio(1, 16)? {
            object.insert(name.clone(), json::for_type(u, ty, 0)?);
        }
    }
    if u.ratio(1, 32)? {
        object.insert(u.arbitrary()?, json::any(u, 1)?);
    }
    Ok(Value::Object(object))
}
