//! Access-policy decisions: one `Decide::decide` of the Cedar engine, which builds the
//! request's entities and context and asks Cedar. Three cases: a role's permit (the
//! built-in roles only), the same with an operator's policy file of ten policies, and a
//! call whose arguments make a permit require approval.
//!
//! `cargo bench -p warden --bench policy`; figures in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::config::home::builtin_roles;
use warden::policy::{
    Action, ArgType, CedarPolicy, Decide as _, PolicyFile, PolicySource, Principal, Request,
    Resource,
};

const FILE: &str = r#"
@id("finance-refunds")
permit(principal in Warden::Role::"finance", action == Warden::Action::"call-tool", resource == Warden::Tool::"refunds/issue");
@id("big-refunds") @approval("required")
permit(principal, action == Warden::Action::"call-tool", resource == Warden::Tool::"refunds/issue")
when { context.args has amount && context.args.amount > 100 };
@id("no-btc")
forbid(principal, action == Warden::Action::"call-tool", resource in Warden::Plugin::"refunds")
when { context.args has currency && context.args.currency == "BTC" };
forbid(principal in Warden::Role::"intern", action, resource is Warden::Tool) when { resource.annotations.destructive };
permit(principal in Warden::Role::"support", action == Warden::Action::"call-tool", resource in Warden::Plugin::"tickets");
permit(principal in Warden::Role::"support", action == Warden::Action::"use-model", resource == Warden::Route::"fast");
forbid(principal is Warden::Agent, action == Warden::Action::"call-tool", resource == Warden::Tool::"files/delete");
permit(principal == Warden::User::"ops", action in [Warden::Action::"read-audit", Warden::Action::"read-metrics"], resource);
forbid(principal, action == Warden::Action::"manage-grants", resource) when { principal is Warden::Agent };
permit(principal in Warden::Role::"approvers", action == Warden::Action::"decide-approval", resource);
"#;

fn engine(file: Option<&str>) -> CedarPolicy {
    CedarPolicy::new(&PolicySource {
        roles: builtin_roles(),
        args: BTreeMap::from([
            ("amount".to_string(), ArgType::Long),
            ("currency".to_string(), ArgType::String),
        ]),
        file: file.map(|text| PolicyFile {
            path: "policy.cedar".into(),
            text: text.into(),
        }),
    })
    .unwrap()
}

fn decisions(c: &mut Criterion) {
    let roles_only = engine(None);
    let with_file = engine(Some(FILE));
    let caller = Principal::new("token:app", vec!["caller".into()]);
    let finance = Principal::new("user:ann", vec!["finance".into()]);
    let tool = Resource::tool("text", "word-count");
    let refund = Resource::tool("refunds", "issue");
    let small = json!({"text": "hello world"});
    let big = json!({"amount": 150, "currency": "EUR", "note": "damaged"});
    let mut group = c.benchmark_group("policy");
    let mut case = |name: &str, engine: &CedarPolicy, principal, resource, args| {
        let request = Request {
            principal,
            action: Action::CallTool,
            resource,
            context: args,
        };
        group.bench_function(name, |b| {
            b.iter(|| black_box(engine.decide(black_box(&request))))
        });
    };
    case(
        "decide/roles-only-allow",
        &roles_only,
        &caller,
        &tool,
        &small,
    );
    case("decide/with-file-allow", &with_file, &caller, &tool, &small);
    case(
        "decide/with-file-approval",
        &with_file,
        &finance,
        &refund,
        &big,
    );
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
