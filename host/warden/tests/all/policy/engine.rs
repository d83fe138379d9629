//! Decisions of the Cedar engine: allow, deny by default, forbid wins, approval on a
//! condition over the arguments, the roles of a config, and the ids of the policies
//! that made each decision.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden::config::home::builtin_roles;
use warden::policy::{
    Action, ArgType, CedarPolicy, Decide as _, Decision, PolicyFile, PolicySource, Principal,
    Resource,
};

/// The built-in roles, `amount` declared as a Long, and `text` as the policy file.
pub(super) fn engine(text: &str) -> CedarPolicy {
    CedarPolicy::new(&source(text)).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn source(text: &str) -> PolicySource {
    PolicySource {
        roles: builtin_roles(),
        args: BTreeMap::from([
            ("amount".to_string(), ArgType::Long),
            ("currency".to_string(), ArgType::String),
        ]),
        file: Some(PolicyFile {
            path: "policy.cedar".into(),
            text: text.into(),
        }),
    }
}

fn decide(
    engine: &CedarPolicy,
    who: &Principal,
    action: Action,
    on: &Resource,
    args: Value,
) -> Decision {
    engine.decide(&warden::policy::Request {
        principal: who,
        action,
        resource: on,
        context: &args,
    })
}

fn user(name: &str, roles: &[&str]) -> Principal {
    Principal::new(
        format!("user:{name}"),
        roles.iter().map(|r| r.to_string()).collect(),
    )
}

const REFUNDS: &str = r#"
// Anyone in finance may issue refunds; above 100 a person approves.
@id("finance-refunds")
permit(principal in Warden::Role::"finance", action == Warden::Action::"call-tool", resource == Warden::Tool::"refunds/issue");

@id("big-refunds-need-approval")
@approval("required")
permit(principal, action == Warden::Action::"call-tool", resource == Warden::Tool::"refunds/issue")
when { context.args has amount && context.args.amount > 100 };

@id("no-refunds-in-btc")
forbid(principal, action == Warden::Action::"call-tool", resource in Warden::Plugin::"refunds")
when { context.args has currency && context.args.currency == "BTC" };

// Interns may do nothing destructive.
forbid(principal in Warden::Role::"intern", action, resource is Warden::Tool)
when { resource.annotations.destructive };
"#;

#[test]
fn a_permit_allows_and_names_itself() {
    let e = engine(REFUNDS);
    let d = decide(
        &e,
        &user("ann", &["finance"]),
        Action::CallTool,
        &Resource::tool("refunds", "issue"),
        json!({"amount": 20}),
    );
    assert_eq!(
        d,
        Decision::Allow {
            policies: vec!["finance-refunds".into()]
        }
    );
}

#[test]
fn nothing_is_allowed_without_a_permit() {
    let e = engine(REFUNDS);
    let d = decide(
        &e,
        &user("bob", &[]),
        Action::CallTool,
        &Resource::tool("refunds", "issue"),
        json!({"amount": 20}),
    );
    let Decision::Deny { policies, reason } = d else {
        panic!("{d:?}")
    };
    assert!(policies.is_empty());
    assert_eq!(
        reason,
        "no policy permits user:bob to call-tool tool refunds/issue"
    );
    let d = decide(
        &e,
        &user("bob", &[]),
        Action::ReadAudit,
        &Resource::Server,
        Value::Null,
    );
    assert!(matches!(d, Decision::Deny { .. }), "{d:?}");
}

#[test]
fn forbid_wins_over_every_permit() {
    let e = engine(REFUNDS);
    // admin permits everything, finance permits this tool: the forbid still wins.
    let d = decide(
        &e,
        &user("root", &["admin", "finance"]),
        Action::CallTool,
        &Resource::tool("refunds", "issue"),
        json!({"amount": 5, "currency": "BTC"}),
    );
    let Decision::Deny { policies, reason } = d else {
        panic!("{d:?}")
    };
    assert_eq!(policies, ["no-refunds-in-btc"]);
    assert_eq!(
        reason,
        "user:root to call-tool tool refunds/issue is forbidden by no-refunds-in-btc"
    );
    // A forbid on an annotation: a destructive tool, not a safe one.
    let destructive = Resource::Tool {
        plugin: "files".into(),
        tool: "delete".into(),
        annotations: warden::policy::ToolAnnotations {
            destructive: true,
            ..Default::default()
        },
        signer: None,
    };
    let intern = user("ivy", &["caller", "intern"]);
    let d = decide(&e, &intern, Action::CallTool, &destructive, json!({}));
    assert_eq!(d.policies(), ["policy.cedar:16"], "{d:?}");
    assert!(!d.is_allow());
    let safe = Resource::Tool {
        plugin: "files".into(),
        tool: "read".into(),
        annotations: warden::policy::ToolAnnotations {
            read_only: true,
            destructive: false,
            idempotent: true,
            open_world: false,
        },
        signer: None,
    };
    let d = decide(&e, &intern, Action::CallTool, &safe, json!({}));
    assert_eq!(
        d,
        Decision::Allow {
            policies: vec!["role:caller:call-tool".into()]
        }
    );
    // A tool nothing is known of is taken to be destructive: the forbid applies.
    let unknown = Resource::tool("files", "read");
    let d = decide(&e, &intern, Action::CallTool, &unknown, json!({}));
    assert!(!d.is_allow(), "{d:?}");
}

#[test]
fn approval_depends_on_the_arguments() {
    let e = engine(REFUNDS);
    let ann = user("ann", &["finance"]);
    let refund = Resource::tool("refunds", "issue");
    let d = decide(&e, &ann, Action::CallTool, &refund, json!({"amount": 150}));
    assert_eq!(
        d,
        Decision::RequireApproval {
            policies: vec!["big-refunds-need-approval".into(), "finance-refunds".into()]
        }
    );
    for amount in [json!(100), json!(99), json!(100.0)] {
        let d = decide(
            &e,
            &ann,
            Action::CallTool,
            &refund,
            json!({"amount": amount}),
        );
        assert_eq!(
            d,
            Decision::Allow {
                policies: vec!["finance-refunds".into()]
            },
            "amount {amount}"
        );
    }
    // Without an amount the approval rule does not apply.
    let d = decide(&e, &ann, Action::CallTool, &refund, json!({}));
    assert!(d.is_allow(), "{d:?}");
    // The approval permit is a permit of its own: for anyone, once a person approves.
    let d = decide(
        &e,
        &user("bob", &[]),
        Action::CallTool,
        &refund,
        json!({"amount": 500}),
    );
    assert_eq!(
        d,
        Decision::RequireApproval {
            policies: vec!["big-refunds-need-approval".into()]
        }
    );
}

#[test]
fn arguments_policies_cannot_judge_are_refused_or_left_out() {
    let e = engine(REFUNDS);
    let ann = user("ann", &["finance"]);
    let refund = Resource::tool("refunds", "issue");
    // A fraction where a Long is declared: refused, saying why.
    let d = decide(
        &e,
        &ann,
        Action::CallTool,
        &refund,
        json!({"amount": 150.5}),
    );
    let Decision::Deny { policies, reason } = d else {
        panic!("{d:?}")
    };
    assert!(policies.is_empty());
    assert!(
        reason.contains(
            "argument amount = 150.5 is not a whole number, and [policy.args] declares it Long"
        ),
        "{reason}"
    );
    // Another kind (a tool whose `amount` is a string): left out, as undeclared ones are.
    let d = decide(
        &e,
        &ann,
        Action::CallTool,
        &refund,
        json!({"amount": "150", "note": [1, {"x": null}]}),
    );
    assert_eq!(
        d,
        Decision::Allow {
            policies: vec!["finance-refunds".into()]
        }
    );
}

#[test]
fn roles_keep_their_meaning() {
    let e = engine("");
    let server = Resource::Server;
    let auditor = Principal::new("token:audit", vec!["auditor".into()]);
    assert_eq!(
        decide(&e, &auditor, Action::ReadAudit, &server, Value::Null),
        Decision::Allow {
            policies: vec!["role:auditor".into()]
        }
    );
    assert!(!decide(&e, &auditor, Action::ManagePlugins, &server, Value::Null).is_allow());
    assert!(
        !decide(
            &e,
            &auditor,
            Action::CallTool,
            &Resource::tool("a", "b"),
            json!({})
        )
        .is_allow()
    );
    let caller = Principal::new("token:app", vec!["caller".into()]);
    assert!(
        decide(
            &e,
            &caller,
            Action::UseModel,
            &Resource::Route {
                name: "smart".into()
            },
            Value::Null
        )
        .is_allow()
    );
    assert!(
        decide(
            &e,
            &caller,
            Action::StartRun,
            &Resource::Agent {
                name: "triage".into()
            },
            json!({})
        )
        .is_allow()
    );
    assert!(!decide(&e, &caller, Action::DecideApproval, &server, Value::Null).is_allow());
    let admin = Principal::new("local:alice", vec!["admin".into()]);
    for action in Action::ALL {
        let on = match action {
            Action::CallTool => Resource::tool("a", "b"),
            Action::StartRun => Resource::Agent { name: "a".into() },
            Action::UseModel => Resource::Route { name: "r".into() },
            _ => Resource::Server,
        };
        assert!(
            decide(&e, &admin, action, &on, json!({})).is_allow(),
            "{action}"
        );
    }
}

#[test]
fn an_agent_acts_with_the_roles_of_who_started_it() {
    let e = engine(
        r#"@id("triage-no-deletes")
forbid(principal is Warden::Agent, action == Warden::Action::"call-tool", resource == Warden::Tool::"files/delete")
when { principal has on_behalf_of && principal.on_behalf_of == "user:bob" };"#,
    );
    let agent = Principal {
        id: "agent:triage".into(),
        roles: vec!["caller".into()],
        on_behalf_of: Some("user:bob".into()),
    };
    let d = decide(
        &e,
        &agent,
        Action::CallTool,
        &Resource::tool("files", "delete"),
        json!({}),
    );
    assert_eq!(d.policies(), ["triage-no-deletes"]);
    assert!(
        decide(
            &e,
            &agent,
            Action::CallTool,
            &Resource::tool("files", "read"),
            json!({})
        )
        .is_allow()
    );
}
