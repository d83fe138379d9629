//! `warden policy check`'s messages: the file, line and column, and what is wrong.

use warden::policy::{CedarPolicy, PolicyError};

use super::engine::source;

fn problems(text: &str) -> Vec<String> {
    match CedarPolicy::new(&source(text)) {
        Ok(_) => panic!("{text} validated"),
        Err(PolicyError::Invalid { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn an_unknown_entity_type_is_named_with_its_place() {
    let got = problems(
        "permit(principal, action, resource);\n\npermit(principal == Warden::Usr::\"ann\", action, resource);\n",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    println!("{}", got[0]);
    assert!(got[0].starts_with("policy.cedar:3:"), "{got:?}");
    assert!(got[0].contains("Warden::Usr"), "{got:?}");
}

#[test]
fn an_unknown_action_is_named_with_its_place() {
    let got = problems("permit(principal, action == Warden::Action::\"call-tol\", resource);");
    println!("{got:?}");
    assert!(got[0].starts_with("policy.cedar:1:"), "{got:?}");
    assert!(got[0].contains("call-tol"), "{got:?}");
}

#[test]
fn an_attribute_of_the_wrong_type_is_named_with_its_place() {
    let got = problems(
        "permit(principal, action == Warden::Action::\"call-tool\", resource)\nwhen { resource.annotations.read_only == \"yes\" };\n\n@id(\"big\")\npermit(principal, action == Warden::Action::\"call-tool\", resource)\nwhen { context.args has amount && context.args.amount like \"1*\" };",
    );
    println!("{got:#?}");
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("policy.cedar:2:"), "{got:?}");
    assert!(got[1].starts_with("policy.cedar:6:"), "{got:?}");
    assert!(got[1].contains("policy big"), "{got:?}");
}

#[test]
fn an_undeclared_argument_is_an_error() {
    let got = problems(
        "permit(principal, action == Warden::Action::\"call-tool\", resource)\nwhen { context.args.total > 5 };",
    );
    println!("{got:?}");
    assert!(got[0].starts_with("policy.cedar:2:"), "{got:?}");
    assert!(got[0].contains("total"), "{got:?}");
}

#[test]
fn a_syntax_error_is_named_with_its_place() {
    let got = problems("permit(principal, action, resource)\nwhen { context.args.amount > };");
    println!("{got:?}");
    assert!(got[0].starts_with("policy.cedar:2:"), "{got:?}");
}

#[test]
fn annotations_are_checked() {
    let got = problems("@approval(\"required\")\nforbid(principal, action, resource);");
    assert_eq!(
        got,
        ["policy.cedar:1:1: @approval(…) on a forbid: only a permit can require approval"]
    );
    let got = problems("@approval(\"maybe\")\npermit(principal, action, resource);");
    assert_eq!(
        got,
        ["policy.cedar:1:1: @approval(\"maybe\"): the only value is \"required\""]
    );
    let got = problems(
        "@id(\"a\")\npermit(principal, action, resource);\n@id(\"a\")\npermit(principal, action, resource);",
    );
    assert_eq!(
        got,
        [
            "policy.cedar:3:1: two policies are named \"a\" (the other at line 1); give each its own @id"
        ]
    );
    let got = problems("@id(\"role:admin\")\npermit(principal, action, resource);");
    assert_eq!(
        got,
        [
            "policy.cedar:1:1: @id(\"role:admin\"): ids starting with \"role:\" are the roles' own; choose another"
        ]
    );
}
