use super::*;
use rmcp::model::RequestId;
use tokio::io::AsyncWriteExt as _;

/// rmcp's own decoding of `line`.
fn by_rmcp(line: &str) -> RxJsonRpcMessage<RoleServer> {
    serde_json::from_str(line).unwrap_or_else(|err| panic!("rmcp refuses {line}: {err}"))
}

/// A message as JSON, and its extensions' count (not serialized: `_meta` lives there).
fn shape(message: &RxJsonRpcMessage<RoleServer>) -> (serde_json::Value, usize) {
    let extensions = match message {
        JsonRpcMessage::Request(request) => match &request.request {
            ClientRequest::CallToolRequest(call) => call.extensions.len(),
            _ => usize::MAX,
        },
        _ => usize::MAX,
    };
    (serde_json::to_value(message).unwrap(), extensions)
}

#[test]
fn a_plain_call_is_decoded_as_rmcp_decodes_it() {
    for line in [
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"adder.add","arguments":{"a":1,"b":2}}}"#,
        r#"{"method":"tools/call","params":{"arguments":{"a":{"deep":[1,"two",null]}},"name":"x"},"id":"req-1","jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"t\u00e9l\"é"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}"#,
        r#"{"jsonrpc":"2.0","id":-3,"method":"tools\/call","params":{"name":"t","arguments":{}}}"#,
    ] {
        let fast =
            plain_call(line.as_bytes()).unwrap_or_else(|| panic!("{line} is a plain tools/call"));
        assert_eq!(shape(&fast), shape(&by_rmcp(line)), "{line}");
        assert!(matches!(decode(line.as_bytes()), Decoded::Message(_)));
    }
}

#[test]
fn anything_else_is_left_to_rmcp() {
    for line in [
        // `_meta` goes to the request's extensions: rmcp's to place.
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":1}}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","requestState":"s"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a"},"extra":1}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"id":8,"method":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"1.0","id":7,"method":"tools/call","params":{"name":"a"}}"#,
    ] {
        assert!(plain_call(line.as_bytes()).is_none(), "{line}");
    }
    // Still decoded, by rmcp, as it always was.
    let meta = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"a","_meta":{"progressToken":1}}}"#;
    match decode(meta.as_bytes()) {
        Decoded::Message(message) => assert_eq!(shape(&message), shape(&by_rmcp(meta))),
        _ => panic!("{meta} is a message"),
    }
}

#[test]
fn lines_are_read_as_rmcp_reads_them() {
    let message = |line: &str| matches!(decode(line.as_bytes()), Decoded::Message(_));
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}"#;
    assert!(message(&format!("{call}\r\n")));
    assert!(message(&format!("\u{feff}{call}\n")));
    assert!(matches!(decode(b"\n"), Decoded::Ignored));
    assert!(matches!(decode(b"\r\n"), Decoded::Ignored));
    // Not JSON: ignored, not answered (an answer could start an echo storm).
    assert!(matches!(decode(b"{not json\n"), Decoded::Ignored));
    // JSON that is no message: answered `Invalid request`.
    assert!(matches!(decode(br#"{"hello":1}"#), Decoded::Invalid));
    // A call whose parameters are wrong is whatever rmcp makes of it.
    let wrong = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#;
    assert!(plain_call(wrong).is_none());
    assert_eq!(
        matches!(decode(wrong), Decoded::Message(_)),
        serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(wrong).is_ok()
    );
    // Notifications outside MCP: what rmcp decodes is decoded, the rest ignored.
    for line in [
        &br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{}}"#[..],
        br#"{"jsonrpc":"2.0","method":"notifications/unknown","params":{}}"#,
        br#"{"jsonrpc":"2.0","method":"notifications/unknown","params":5}"#,
        br#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":[1]}"#,
    ] {
        match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
            Ok(_) => assert!(matches!(decode(line), Decoded::Message(_))),
            Err(_) => assert!(matches!(decode(line), Decoded::Ignored)),
        }
    }
}

/// Lines over a pipe: a line past the limit is dropped and the next one is read; an
/// invalid message is answered; the end of input ends `receive`.
#[tokio::test]
async fn over_a_pipe() {
    let (mut client, server_read) = tokio::io::duplex(1 << 16);
    let (server_write, client_read) = tokio::io::duplex(1 << 16);
    let mut lines = Lines::with_max_line(server_read, server_write, 200);
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}"#;
    let long = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"{}"}}}}"#,
        "x".repeat(300)
    );
    client
        .write_all(format!("{long}\n{{\"hello\":1}}\n{call}\n").as_bytes())
        .await
        .unwrap();
    match lines.receive().await {
        Some(JsonRpcMessage::Request(request)) => {
            assert_eq!(request.id, RequestId::Number(1));
        }
        other => panic!("expected the call with id 1, got {other:?}"),
    }
    let mut answers = BufReader::new(client_read);
    let mut answer = String::new();
    answers.read_line(&mut answer).await.unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    drop(client);
    assert!(lines.receive().await.is_none());
}

/// A read cancelled part way keeps what it read: the line is whole the next time.
#[tokio::test]
async fn a_cancelled_read_loses_nothing() {
    let (mut client, server_read) = tokio::io::duplex(1 << 16);
    let (server_write, _client_read) = tokio::io::duplex(1 << 16);
    let mut lines = Lines::new(server_read, server_write);
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"a"}}"#;
    let (head, tail) = call.split_at(30);
    client.write_all(head.as_bytes()).await.unwrap();
    let cut = tokio::time::timeout(std::time::Duration::from_millis(50), lines.receive()).await;
    assert!(cut.is_err(), "no whole line yet");
    client
        .write_all(format!("{tail}\n").as_bytes())
        .await
        .unwrap();
    match lines.receive().await {
        Some(JsonRpcMessage::Request(request)) => assert_eq!(request.id, RequestId::Number(9)),
        other => panic!("expected the call with id 9, got {other:?}"),
    }
}

/// A reader that fails: a broken stdin.
struct Broken;

impl AsyncRead for Broken {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::other("the pipe broke")))
    }
}

/// A read error ends `receive` (the serving ends, as at the end of input), after the
/// lines read before it.
#[tokio::test]
async fn a_read_error_ends_after_the_lines_before_it() {
    use tokio::io::AsyncReadExt as _;
    let call =
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"a\"}}\n";
    let (server_write, _client_read) = tokio::io::duplex(1 << 16);
    let mut lines = Lines::new(call.as_bytes().chain(Broken), server_write);
    match lines.receive().await {
        Some(JsonRpcMessage::Request(request)) => assert_eq!(request.id, RequestId::Number(3)),
        other => panic!("expected the call with id 3, got {other:?}"),
    }
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), lines.receive()).await;
    assert!(
        matches!(end, Ok(None)),
        "a broken stdin must end the serving"
    );
}
