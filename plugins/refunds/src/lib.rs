//! The `refunds` plugin: refunds recorded in the host's memory, namespace `refunds`.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "tools are exported only to wasm; natively only unit tests run"
    )
)]

use serde_json::{Value, json};
use warden_sdk::host::memory;

warden_sdk::wit_bindgen::generate!({
    world: "warden:refunds/refunds",
    path: ["../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:host/log@0.1.0": warden_sdk::host::log,
        "warden:host/memory@0.1.0": warden_sdk::host::memory,
    },
});

const NAMESPACE: &str = "refunds";
const COUNTER: &str = "next-id";
const PREFIX: &str = "refund:";

struct Refunds;

fn describe(err: memory::Error) -> String {
    match err {
        memory::Error::Denied(m) => format!("denied: {m}"),
        memory::Error::TooLarge(m) => format!("too large: {m}"),
        memory::Error::Invalid(m) => format!("invalid: {m}"),
        memory::Error::Internal(m) => format!("the host's memory failed: {m}"),
    }
}

fn from_json(value: &Value) -> Option<Refund> {
    Some(Refund {
        id: value["id"].as_str()?.to_string(),
        order: value["order"].as_str()?.to_string(),
        amount: u32::try_from(value["amount"].as_u64()?).ok()?,
        reason: value["reason"].as_str()?.to_string(),
    })
}

impl Guest for Refunds {
    fn issue(order: String, amount: u32, reason: String) -> Result<Refund, String> {
        if order.trim().is_empty() {
            return Err("a refund needs an order".into());
        }
        if amount == 0 {
            return Err("a refund needs an amount above 0".into());
        }
        let next = memory::get(NAMESPACE, COUNTER)
            .map_err(describe)?
            .and_then(|e| String::from_utf8(e.value).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        memory::set(
            NAMESPACE,
            COUNTER,
            next.to_string().as_bytes(),
            "text/plain",
            None,
        )
        .map_err(describe)?;
        let refund = Refund {
            id: format!("r{next}"),
            order,
            amount,
            reason,
        };
        let record = json!({
            "id": refund.id, "order": refund.order, "amount": refund.amount, "reason": refund.reason,
        });
        memory::set(
            NAMESPACE,
            &format!("{PREFIX}{next:08}"),
            record.to_string().as_bytes(),
            "application/json",
            None,
        )
        .map_err(describe)?;
        Ok(refund)
    }

    fn issued() -> Result<Vec<Refund>, String> {
        let mut refunds = Vec::new();
        let mut cursor = None;
        loop {
            let page =
                memory::list_keys(NAMESPACE, PREFIX, cursor.as_deref(), 100).map_err(describe)?;
            for key in &page.keys {
                let Some(entry) = memory::get(NAMESPACE, key).map_err(describe)? else {
                    continue;
                };
                let value: Value = serde_json::from_slice(&entry.value).unwrap_or(Value::Null);
                refunds.extend(from_json(&value));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(refunds),
            }
        }
    }
}

export!(Refunds);
