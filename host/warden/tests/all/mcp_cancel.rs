//! Progress and cancellation over MCP: a client that asks for progress hears a call
//! start and end; a client that cancels a call (or goes away) stops its instance, the
//! call is on the audit record as cancelled, and the server keeps serving.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceExt as _};
use serde_json::{Value, json};
use warden::audit::{Audit, AuditOptions, Filter, Record};
use warden::grant::Grant;
use warden::limits::Limits;
use warden::mcp::{FixedTools, Mcp};
use warden::{Plugin, Runtime};
use warden_tests::guests;

/// Progress notifications a client heard, in order.
#[derive(Clone, Default)]
struct Heard(
    Arc<Mutex<Vec<ProgressNotificationParam>>>,
    Arc<tokio::sync::Notify>,
);

impl ClientHandler for Heard {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params);
        self.1.notify_waiters();
    }
}

impl Heard {
    fn messages(&self) -> Vec<(f64, String)> {
        let heard = self.0.lock().unwrap();
        heard
            .iter()
            .map(|p| (p.progress, p.message.clone().unwrap_or_default()))
            .collect()
    }

    async fn wait_for(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.0.lock().unwrap().len() < count {
            let notified = self.1.notified();
            assert!(
                tokio::time::timeout_at(deadline, notified).await.is_ok()
                    || self.0.lock().unwrap().len() >= count,
                "waited for {count} progress notifications, heard {:?}",
                self.messages()
            );
        }
    }
}

/// A runtime recording to an audit log, serving `hostile` (a long time limit: only a
/// cancellation ends `loop-forever` early) and `text`.
struct Served {
    runtime: Arc<Runtime>,
    mcp: Mcp,
    _home: tempfile::TempDir,
}

impl Served {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let runtime = Arc::new(Runtime::new().unwrap());
        runtime
            .set_audit(Audit::open(home.path(), AuditOptions::default()).unwrap())
            .unwrap();
        let slow = Grant {
            limits: Limits {
                timeout_ms: 600_000,
                ..Limits::default()
            },
            ..Grant::default()
        };
        let plugins: Vec<Arc<Plugin>> = vec![
            Arc::new(crate::load_into(&runtime, "hostile", guests::HOSTILE, slow)),
            Arc::new(crate::load_into(
                &runtime,
                "text",
                guests::TEXT,
                Grant::default(),
            )),
        ];
        let mcp = Mcp::new(runtime.clone(), Arc::new(FixedTools::new(plugins)));
        Self {
            runtime,
            mcp,
            _home: home,
        }
    }

    async fn connect(&self, heard: Heard) -> RunningService<RoleClient, Heard> {
        let (server_io, client_io) = tokio::io::duplex(1 << 16);
        let server = self
            .mcp
            .handler(warden::Caller::local(warden::Via::McpStdio))
            .serve(server_io);
        let client = heard.serve(client_io);
        let (server, client) = tokio::join!(server, client);
        // The server runs until its client goes away.
        let server = server.unwrap();
        tokio::spawn(async move {
            let _ = server.waiting().await;
        });
        client.unwrap()
    }

    fn calls(&self) -> Vec<Record> {
        let filter = Filter {
            kind: Some("tool.call".into()),
            ..Filter::default()
        };
        self.runtime.audit().unwrap().read(filter).unwrap()
    }

    /// Waits until `tool`'s call is on record, and returns the record.
    async fn recorded(&self, tool: &str) -> Record {
        for _ in 0..600 {
            if let Some(r) = self
                .calls()
                .into_iter()
                .find(|r| r.tool.as_deref() == Some(tool))
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no tool.call record of {tool} within 30 s (its time limit is 600 s)");
    }
}

fn call(name: &str, args: Value) -> ClientRequest {
    ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new(name.to_string())
            .with_arguments(args.as_object().unwrap().clone()),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_tells_a_call_start_and_end() {
    let served = Served::new();
    let heard = Heard::default();
    let client = served.connect(heard.clone()).await;
    let result = client
        .call_tool(
            CallToolRequestParams::new("text__word-count")
                .with_arguments(json!({"text": "a b c"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["words"], 3);
    heard.wait_for(2).await;
    assert_eq!(
        heard.messages(),
        [
            (0.0, "calling text/word-count".to_string()),
            (1.0, "text/word-count: done".to_string())
        ]
    );
    let total = heard.0.lock().unwrap()[0].total;
    assert_eq!(total, Some(1.0));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_is_stopped_and_on_record_as_cancelled() {
    let served = Served::new();
    let heard = Heard::default();
    let client = served.connect(heard.clone()).await;
    let handle = client
        .peer()
        .send_cancellable_request(
            call("hostile__loop-forever", json!({})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Running: the start was announced.
    heard.wait_for(1).await;
    handle
        .cancel(Some("the user gave up".into()))
        .await
        .unwrap();

    // Stopped long before its 600 s limit, and on record as cancelled.
    let record = served.recorded("loop-forever").await;
    assert_eq!(record.fields["error"]["code"], "cancelled", "{record:?}");
    assert!(
        record.fields["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hostile/loop-forever: cancelled by the caller"),
        "{record:?}"
    );
    // The end was announced too, as a cancellation.
    heard.wait_for(2).await;
    assert_eq!(
        heard.messages()[1].1,
        "hostile/loop-forever: failed (cancelled)"
    );

    // The server keeps serving, on the same connection.
    let result = client
        .call_tool(
            CallToolRequestParams::new("text__word-count")
                .with_arguments(json!({"text": "still here"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["words"], 2);
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_has_its_calls_stopped() {
    let served = Served::new();
    let heard = Heard::default();
    let client = served.connect(heard.clone()).await;
    let _pending = client
        .peer()
        .send_cancellable_request(
            call("hostile__loop-forever", json!({})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    heard.wait_for(1).await;
    // The connection closes with the call in flight.
    client.cancel().await.unwrap();
    let record = served.recorded("loop-forever").await;
    assert_eq!(record.fields["error"]["code"], "cancelled", "{record:?}");
}
