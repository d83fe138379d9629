//! Tools from a component's plain exports.
//!
//! Every exported function is a tool: at world level its name is the function's name,
//! inside an exported interface it is `<interface>.<function>`, with the interface's
//! short name (`transform` for `acme:text/transform@1.0.0`). Exported `wasi:`
//! interfaces are entry points of other worlds (`wasi:cli/run`,
//! `wasi:http/incoming-handler`), not tools, and are skipped, as are an agent's
//! `warden:plugin/agent-policy` (see [`warden_runs`]) and componentize-py's
//! `exports.init` hook. A function whose types Warden cannot map to JSON
//! (resources, streams, futures) is skipped with the reason.

use serde::Serialize;
use serde_json::Value;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Type};

use crate::docs::PackageDocs;
use crate::schema;
use warden_config::manifest::ToolEntry;
use warden_policy::ToolAnnotations;

/// Where a tool's description came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocSource {
    /// The component's `package-docs` custom section.
    Component,
    /// WIT source given when the plugin was added (`--wit`).
    Wit,
    /// The plugin's manifest.
    Manifest,
    /// Generated from the function's signature.
    Signature,
}

/// One tool of a plugin.
#[derive(Clone, Debug)]
pub struct Tool {
    /// The tool's name within its plugin.
    pub name: String,
    /// The full export name of the interface that holds it, for interface exports.
    pub interface: Option<String>,
    /// The function's name.
    pub function: String,
    /// What the tool does, for people and models.
    pub description: String,
    /// Where [`Tool::description`] came from.
    pub description_source: DocSource,
    /// JSON Schema of the arguments (an object keyed by parameter name).
    pub input_schema: Value,
    /// JSON Schema of a successful result.
    pub output_schema: Value,
    /// One-line WIT signature.
    pub signature: String,
    /// What the manifest says the tool does (read-only, destructive…), defaults where
    /// it says nothing; [`Plugin::annotations`](crate::Plugin::annotations) narrows
    /// it by the grant.
    pub annotations: ToolAnnotations,
    pub(crate) export: ComponentExportIndex,
    pub(crate) params: Vec<(String, Type)>,
    pub(crate) result: Option<Type>,
}

impl Tool {
    /// The description's first paragraph on one line, cut to about 100 characters.
    pub fn summary(&self) -> String {
        let paragraph: Vec<&str> = self
            .description
            .lines()
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect();
        let line = paragraph.join(" ");
        match line.char_indices().nth(100) {
            Some((cut, _)) => format!("{}…", line[..cut].trim_end()),
            None => line,
        }
    }

    /// True when the function's return type is a `result`: the tool then succeeds with
    /// the `ok` value and fails with the `err` value.
    pub fn is_fallible(&self) -> bool {
        matches!(self.result, Some(Type::Result(_)))
    }

    /// The function's parameters, for the fuzz targets (`fuzz/`, `warden-fuzz`) that
    /// convert JSON for them with [`crate::convert::args_from_json`]. Not an API.
    #[doc(hidden)]
    pub fn params(&self) -> &[(String, Type)] {
        &self.params
    }
}

/// An export that is not served as a tool, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The export's name.
    pub name: String,
    /// Why it is not a tool.
    pub reason: String,
}

/// What the component does not say about its tools: WIT source given at add time, and
/// the manifest's `[tools]` table (descriptions and behaviour hints).
#[derive(Clone, Debug, Default)]
pub struct ExtraDocs<'a> {
    /// Docs from WIT source (`--wit DIR`).
    pub wit: Option<&'a PackageDocs>,
    /// The plugin's manifest.
    pub manifest: Option<&'a warden_config::manifest::Manifest>,
}

/// componentize-py exports `exports` with `init(app-name, symbols, stub-wasi)`, which
/// it calls while building the component: not the author's, never a tool.
fn is_componentize_py_init(
    engine: &Engine,
    name: &str,
    instance: &wasmtime::component::types::ComponentInstance,
) -> bool {
    let funcs: Vec<_> = instance
        .exports(engine)
        .filter_map(|(fname, item)| match item.ty {
            ComponentItem::ComponentFunc(f) => Some((fname, f)),
            _ => None,
        })
        .collect();
    name == "exports"
        && matches!(funcs.as_slice(), [(fname, f)]
            if *fname == "init" && f.params().any(|(p, _)| p == "stub-wasi"))
}

/// The tools of `component`, and the exports that are not tools.
pub fn discover(
    engine: &Engine,
    component: &Component,
    embedded: Option<&PackageDocs>,
    extra: &ExtraDocs<'_>,
) -> (Vec<Tool>, Vec<Skipped>) {
    let mut tools = Vec::new();
    let mut skipped = Vec::new();
    let ty = component.component_type();
    for (name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let Some(export) = component.get_export_index(None, name) else {
                    continue;
                };
                let found = FoundFunc {
                    interface: None,
                    function: name,
                    export,
                    func: &func,
                };
                push(found, embedded, extra, &mut tools, &mut skipped);
            }
            ComponentItem::ComponentInstance(instance) => {
                if name.starts_with("wasi:") {
                    skipped.push(Skipped {
                        name: name.to_string(),
                        reason: "a WASI entry point, not a tool".into(),
                    });
                    continue;
                }
                if name.starts_with("warden:plugin/agent-policy@") {
                    skipped.push(Skipped {
                        name: name.to_string(),
                        reason: "an agent's entry point (`warden run`), not a tool".into(),
                    });
                    continue;
                }
                if is_componentize_py_init(engine, name, &instance) {
                    skipped.push(Skipped {
                        name: name.to_string(),
                        reason: "componentize-py's pre-initialisation hook, not a tool".into(),
                    });
                    continue;
                }
                let Some(instance_index) = component.get_export_index(None, name) else {
                    continue;
                };
                for (fname, item) in instance.exports(engine) {
                    let ComponentItem::ComponentFunc(func) = item.ty else {
                        continue;
                    };
                    let Some(export) = component.get_export_index(Some(&instance_index), fname)
                    else {
                        continue;
                    };
                    let found = FoundFunc {
                        interface: Some(name),
                        function: fname,
                        export,
                        func: &func,
                    };
                    push(found, embedded, extra, &mut tools, &mut skipped);
                }
            }
            _ => {}
        }
    }
    (tools, skipped)
}

struct FoundFunc<'a> {
    interface: Option<&'a str>,
    function: &'a str,
    export: ComponentExportIndex,
    func: &'a wasmtime::component::types::ComponentFunc,
}

/// `acme:text/transform@1.0.0` → `transform`; `transform` → `transform`.
pub fn short_interface_name(export: &str) -> &str {
    let name = export.rsplit_once('/').map_or(export, |(_, n)| n);
    name.split_once('@').map_or(name, |(n, _)| n)
}

fn push(
    found: FoundFunc<'_>,
    embedded: Option<&PackageDocs>,
    extra: &ExtraDocs<'_>,
    tools: &mut Vec<Tool>,
    skipped: &mut Vec<Skipped>,
) {
    let short = found.interface.map(short_interface_name);
    let name = match short {
        Some(iface) => format!("{iface}.{}", found.function),
        None => found.function.to_string(),
    };
    let params: Vec<(String, Type)> = found
        .func
        .params()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    let result = found.func.results().next();
    let signature = signature(found.function, &params, result.as_ref());
    let schemas = schema::input_schema(&params)
        .and_then(|input| Ok((input, schema::output_schema(result.as_ref())?)));
    let (input_schema, output_schema) = match schemas {
        Ok(s) => s,
        Err(err) => {
            skipped.push(Skipped {
                name,
                reason: err.to_string(),
            });
            return;
        }
    };
    let (description, description_source) = describe(&name, short, found.function, embedded, extra)
        .unwrap_or_else(|| (signature.clone(), DocSource::Signature));
    let annotations = match extra.manifest {
        Some(manifest) => manifest.annotations(&name),
        None => ToolEntry::default_annotations(),
    };
    tools.push(Tool {
        name,
        interface: found.interface.map(str::to_string),
        function: found.function.to_string(),
        description,
        description_source,
        input_schema,
        output_schema,
        signature,
        annotations,
        export: found.export,
        params,
        result,
    });
}

fn describe(
    name: &str,
    interface: Option<&str>,
    function: &str,
    embedded: Option<&PackageDocs>,
    extra: &ExtraDocs<'_>,
) -> Option<(String, DocSource)> {
    let from = |docs: Option<&PackageDocs>| {
        docs.and_then(|d| d.function(interface, function))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(text) = from(embedded) {
        return Some((text, DocSource::Component));
    }
    if let Some(text) = from(extra.wit) {
        return Some((text, DocSource::Wit));
    }
    let text = extra.manifest?.tool_description(name)?.trim();
    (!text.is_empty()).then(|| (text.to_string(), DocSource::Manifest))
}

/// A WIT-like one-line signature: `diff(old: string, new: string) -> list<record>`.
pub fn signature(function: &str, params: &[(String, Type)], result: Option<&Type>) -> String {
    let params: Vec<String> = params
        .iter()
        .map(|(n, t)| format!("{n}: {}", type_name(t)))
        .collect();
    let mut out = format!("{function}({})", params.join(", "));
    if let Some(result) = result {
        out.push_str(" -> ");
        out.push_str(&type_name(result));
    }
    out
}

/// A short WIT spelling of a type (records and variants by their kind).
pub fn type_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::Tuple(t) => {
            let items: Vec<String> = t.types().map(|t| type_name(&t)).collect();
            format!("tuple<{}>", items.join(", "))
        }
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => {
            let ok = r.ok().map_or_else(|| "_".to_string(), |t| type_name(&t));
            let err = r.err().map_or_else(|| "_".to_string(), |t| type_name(&t));
            format!("result<{ok}, {err}>")
        }
        Type::Record(_) => "record".into(),
        Type::Variant(_) => "variant".into(),
        Type::Enum(_) => "enum".into(),
        Type::Flags(_) => "flags".into(),
        Type::Own(_) | Type::Borrow(_) => "resource".into(),
        _ => "unsupported".into(),
    }
}
