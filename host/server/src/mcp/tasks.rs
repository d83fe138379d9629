//! Long calls as MCP tasks (the tasks extension, `io.modelcontextprotocol/tasks`): a
//! client that declares it gets, for a call of a tool whose `timeout_ms` is longer
//! than a request comfortably waits ([`TASK_AFTER_MS`]), a task handle at once
//! (`resultType: "task"`) and polls `tasks/get` for the result; `tasks/cancel` stops
//! the call (on the record as cancelled). A call the policy holds runs on in its task:
//! `tasks/get` is `input_required` with the hold's URL-mode elicitation until the
//! client answers it with `tasks/update` and a person decides ([`super::holds`]).
//!
//! A task is its caller's: `tasks/get`, `tasks/update` and `tasks/cancel` of another
//! principal's task are answered as of a task that does not exist. Tasks live in this
//! process's memory (the SDK's `TaskManager`), for five minutes past their end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, DetailedTask, Task};
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::handler::answer;
use super::holds::{Call, Held};
use warden_runtime::error::CallError;
use warden_runtime::{CallOptions, Caller, Plugin};

/// A call of a tool whose `timeout_ms` is longer than this runs as a task for a client
/// that can take one.
pub const TASK_AFTER_MS: u64 = 10_000;

/// The server's tasks, and whose each is.
#[derive(Default)]
pub(super) struct Tasks {
    manager: TaskManager,
    owners: Mutex<HashMap<String, String>>,
}

impl Tasks {
    /// Runs `caller`'s call of `tool` of `plugin` as a task; its seed state.
    pub(super) fn spawn(
        &self,
        shared: Arc<Shared>,
        caller: Caller,
        plugin: Arc<Plugin>,
        tool: String,
        arguments: Value,
    ) -> Task {
        let owner = caller.id().to_string();
        let options =
            TaskOptions::new().with_status_message(format!("calling {}/{tool}", plugin.name));
        let task = self.manager.spawn(options, move |task| {
            Box::pin(run(shared, task, caller, plugin, tool, arguments))
        });
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the owners of tasks the manager no longer keeps.
        owners.retain(|id, _| self.manager.get_task(id).is_ok());
        owners.insert(task.task_id.clone(), owner);
        task
    }

    /// `tasks/get`.
    pub(super) fn get(&self, caller: &Caller, id: &str) -> Result<DetailedTask, McpError> {
        self.check(caller, id)?;
        self.manager.get_task(id)
    }

    /// `tasks/update`.
    pub(super) fn update(
        &self,
        caller: &Caller,
        id: &str,
        responses: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<(), McpError> {
        self.check(caller, id)?;
        self.manager.update_task(id, responses)
    }

    /// `tasks/cancel`.
    pub(super) fn cancel(&self, caller: &Caller, id: &str) -> Result<(), McpError> {
        self.check(caller, id)?;
        self.manager.cancel_task(id)
    }

    fn check(&self, caller: &Caller, id: &str) -> Result<(), McpError> {
        let owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        match owners.get(id) {
            Some(owner) if owner == caller.id() => Ok(()),
            _ => Err(McpError::invalid_params(
                format!("no task {id:?}"),
                Some(serde_json::json!({ "taskId": id })),
            )),
        }
    }
}

/// The task's work: the call through the gate, held for a person if the policy says
/// so, stopped by `tasks/cancel`.
async fn run(
    shared: Arc<Shared>,
    task: TaskContext,
    caller: Caller,
    plugin: Arc<Plugin>,
    tool: String,
    arguments: Value,
) -> Result<CallToolResult, TaskExit> {
    let cancel = CancellationToken::new();
    let call = |arguments: Value, approved_by: Option<String>| {
        let (shared, caller, plugin, tool, cancel) = (&shared, &caller, &plugin, &tool, &cancel);
        async move {
            shared
                .call(
                    caller,
                    plugin,
                    tool,
                    &arguments,
                    CallOptions {
                        cancel: Some(cancel),
                        approved_by: approved_by.as_deref(),
                        hold: shared.holds.is_some(),
                    },
                )
                .await
        }
    };
    let work = async {
        let mut result = call(arguments.clone(), None).await;
        if let (Err(CallError::Held { policies, .. }), Some(holds)) = (&result, &shared.holds) {
            let held = Call {
                caller: &caller,
                plugin: &plugin,
                tool: &tool,
                arguments: &arguments,
            };
            match holds
                .hold_in_task(&shared.runtime, held, policies, &task)
                .await
                .map_err(TaskExit::Error)?
            {
                Held::Approved { arguments, by } => result = call(arguments, Some(by)).await,
                Held::Refused(error) => return Ok(super::handler::failed(&error)),
                Held::Ask(_) => unreachable!("a task's hold asks through the task"),
            }
        }
        Ok(answer(result, true))
    };
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => out,
        () = task.cancelled() => {
            cancel.cancel();
            let _ = work.await;
            Err(TaskExit::Cancelled)
        }
    }
}
