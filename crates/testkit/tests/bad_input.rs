//! Bad input at the edge (oversized, 10,000 labels, deep JSON, invalid UTF-8, request bodies that
//! are not protobuf, undecodable task records) gets a clear gRPC status and writes nothing; a bad
//! config stops a service with exit code 2 and a one-line reason naming the key.
#![allow(clippy::unwrap_used)]

use baton_proto::v1::{GetRunRequest, ListRunsRequest, RunSpec, SubmitRunRequest, WatchRunRequest};
use baton_testkit::runs::{echoes, script};
use baton_testkit::{bin_path, Stack, StackOptions};
use tonic::Code;

async fn submit_err(stack: &Stack, spec: Option<RunSpec>) -> tonic::Status {
    let mut client = stack.client().await;
    client.submit_run(SubmitRunRequest { spec, idempotency_key: String::new() }).await.unwrap_err()
}

/// `SubmitRunRequest` as bytes on the wire: `spec` (1) holding `goal` (1) as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSubmit {
    #[prost(message, optional, tag = "1")]
    spec: Option<RawSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawSpec {
    #[prost(bytes = "vec", tag = "1")]
    goal: Vec<u8>,
}

async fn submit_raw_goal(stack: &Stack, goal: Vec<u8>) -> tonic::Status {
    let endpoint = format!("http://127.0.0.1:{}", stack.grpc_port);
    let channel = tonic::transport::Endpoint::from_shared(endpoint).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/baton.v1.RunService/SubmitRun");
    let codec = tonic_prost::ProstCodec::<RawSubmit, baton_proto::v1::SubmitRunResponse>::default();
    let request = tonic::Request::new(RawSubmit { spec: Some(RawSpec { goal }) });
    grpc.unary(request, path, codec).await.unwrap_err()
}

/// A codec that sends its bytes as they are (and reads an answer as bytes): raw request bodies.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// Sends `body` as the request message of the RPC at `path` (`/service/Method`); the status it
/// gets. `streaming` for a server-streaming RPC.
async fn call_raw(stack: &Stack, path: &'static str, streaming: bool, body: &[u8]) -> tonic::Status {
    let endpoint = format!("http://127.0.0.1:{}", stack.grpc_port);
    let channel = tonic::transport::Endpoint::from_shared(endpoint).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
    let request = tonic::Request::new(body.to_vec());
    if streaming {
        grpc.server_streaming(request, path, RawCodec).await.map(|_| ()).unwrap_err()
    } else {
        grpc.unary(request, path, RawCodec).await.map(|_| ()).unwrap_err()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses_and_write_nothing() {
    let mut stack = Stack::infra("bad-input", StackOptions::default()).await;
    stack.start_gateway().await;

    let e = submit_err(&stack, Some(script(&[]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec.planner.script.steps") && e.message().contains("empty"), "{e}");

    let e = submit_err(&stack, None).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec"), "{e}");

    let e = submit_err(&stack, Some(script(&[("echo", "{}"), ("launch_missiles", "{}")]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("steps[1].tool") && e.message().contains("launch_missiles"), "{e}");

    let e = submit_err(&stack, Some(script(&[("sleep", r#"{"ms":"soon"}"#)]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("steps[0].args_json"), "{e}");

    // Over the 1 MiB request limit: refused before decoding.
    let huge = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let e = submit_err(&stack, Some(script(&[("echo", &huge)]))).await;
    assert!(matches!(e.code(), Code::ResourceExhausted | Code::OutOfRange), "{e}");
    assert!(e.message().contains("too large") || e.message().contains("limit"), "{e}");
    // Under the request limit but over the per-step args limit.
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(100 * 1024));
    let e = submit_err(&stack, Some(script(&[("echo", &big)]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("args_json") && e.message().contains("limit"), "{e}");

    // 10,000 labels, and JSON nested 50,000 deep: refused with the field named, no panic.
    let mut spec = echoes(1);
    spec.labels = (0..10_000).map(|i| (format!("k{i}"), "v".to_string())).collect();
    let e = submit_err(&stack, Some(spec)).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec.labels") && e.message().contains("10000"), "{e}");
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let e = submit_err(&stack, Some(script(&[("echo", &deep)]))).await;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("steps[0].args_json"), "{e}");

    // A string field that is not UTF-8 (sent as raw bytes under RunSpec.goal's tag): refused
    // while decoding, before any handler runs.
    let e = submit_raw_goal(&stack, vec![b'h', 0xff, 0xfe, b'!']).await;
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("spec.goal: ") && e.message().contains("UTF-8"), "{e:?}");
    // Bodies that are not the request message at all, on every kind of RPC: INVALID_ARGUMENT,
    // with the field named where there is one.
    let not_protobuf: &[u8] = &[0x0f, 0xff, 0xff]; // field 1 with wire type 7, which does not exist
    let spec_not_a_message: &[u8] = &[0x08, 0x01]; // SubmitRunRequest.spec (1) sent as a number
    let cut_short: &[u8] = &[0x0a, 0x05, 0x01]; // spec claims 5 bytes, 1 follows
    for (path, streaming, body, names) in [
        ("/baton.v1.RunService/SubmitRun", false, not_protobuf, "request body: invalid wire type value: 7"),
        ("/baton.v1.RunService/SubmitRun", false, spec_not_a_message, "spec: invalid wire type"),
        ("/baton.v1.RunService/SubmitRun", false, cut_short, "spec: "),
        ("/baton.v1.RunService/GetRun", false, not_protobuf, "request body: "),
        ("/baton.v1.RunService/WatchRun", true, not_protobuf, "request body: "),
        ("/baton.v1.AdminService/ListDeadLetters", false, not_protobuf, "request body: "),
        ("/baton.v1.KeyService/ListKeys", false, not_protobuf, "request body: "),
    ] {
        let e = call_raw(&stack, path, streaming, body).await;
        assert_eq!(e.code(), Code::InvalidArgument, "{path} {body:?}: {e:?}");
        assert!(e.message().starts_with(names), "{path} {body:?}: {e:?}");
    }

    let mut spec = echoes(1);
    spec.budget = Some(baton_proto::v1::Budget { max_steps: 1_000_000, ..Default::default() });
    let e = submit_err(&stack, Some(spec)).await;
    assert!(e.message().contains("spec.budget.max_steps"), "{e}");

    let mut client = stack.client().await;
    let e = client
        .get_run(GetRunRequest { run_id: "0198a0b1-0000-7000-8000-000000000000".into(), latest_steps: 0 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("0198a0b1-0000-7000-8000-000000000000"), "{e}");
    let e = client.get_run(GetRunRequest { run_id: String::new(), latest_steps: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client.get_run(GetRunRequest { run_id: "a}b{c".into(), latest_steps: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client.watch_run(WatchRunRequest { run_id: "nope".into(), after_seq: 0 }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e =
        client.list_runs(ListRunsRequest { status: 0, page_size: 0, page_token: "garbage".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client
        .list_runs(ListRunsRequest { status: 0, page_size: 100_000, page_token: String::new() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let mut req = tonic::Request::new(SubmitRunRequest { spec: Some(echoes(1)), idempotency_key: String::new() });
    req.metadata_mut().insert("x-baton-tenant", "no spaces allowed".parse().unwrap());
    let e = client.submit_run(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Nothing was written by any refused submit.
    let page = client.list_runs(ListRunsRequest::default()).await.unwrap().into_inner();
    assert!(page.runs.is_empty(), "refused submits left runs behind: {:?}", page.runs);
}

#[test]
fn a_bad_config_exits_2_naming_the_key() {
    for (key, value, named) in [
        ("BATON_WORKER_HEARTBEAT_MS", "999999", "worker.heartbeat_ms"),
        ("BATON_WORKER_CONCURENCY", "4", "BATON_WORKER_CONCURENCY"),
        ("BATON_KAFKA_PARTITIONS", "many", "partitions"),
    ] {
        let out = std::process::Command::new(bin_path("baton-worker")).env_clear().env(key, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
    }
    let out = std::process::Command::new(bin_path("baton-gateway"))
        .env_clear()
        .args(["--dump-config", "--set", "gateway.max_watchers=7"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("max_watchers = 7"));
}

/// A record on a task topic that is not a task never blocks its partition: it is copied to the
/// dead-letter topic as it came, with where it came from and why, and the runs behind it on the
/// same partition complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_task_goes_to_the_dead_letter_topic_and_the_partition_moves_on() {
    use baton_bus::rdkafka::consumer::{BaseConsumer, Consumer as _};
    use baton_bus::rdkafka::message::Headers as _;
    use baton_bus::rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
    use baton_bus::rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
    use std::time::{Duration, Instant};

    let mut opts = StackOptions::default();
    opts.env.push(("BATON_KAFKA_PARTITIONS".into(), "1".into()));
    let stack = Stack::full("undecodable", opts).await;
    let mut client = stack.client().await;
    let bootstrap = stack.broker.bootstrap();
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    // Field 1 with wire type 7 does not exist in protobuf: no decoder accepts it.
    let garbage: [&[u8]; 2] = [&[0x0f, 0xff, 0xff], b""];
    for payload in garbage {
        producer.send(BaseRecord::to("baton.tasks.main").key("garbage").payload(payload)).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let id = baton_testkit::runs::submit(&mut client, echoes(2), "").await;
    let events = baton_testkit::runs::watch_to_end(&mut client, &id, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert_eq!(baton_testkit::runs::check_history(&events), Ok(2));

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "dlq-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset("baton.tasks.dlq", 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut errors = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors.len() < 2 && Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) else { continue };
        let header = |name: &str| {
            m.headers()
                .and_then(|h| h.iter().find(|x| x.key == name))
                .and_then(|x| x.value)
                .map(|v| String::from_utf8_lossy(v).to_string())
        };
        assert_eq!(header("baton-origin-topic").as_deref(), Some("baton.tasks.main"));
        assert_eq!(m.key(), Some(&b"garbage"[..]));
        errors.push(header("baton-error").unwrap_or_default());
    }
    assert_eq!(errors.len(), 2, "both records are on the dead-letter topic: {errors:?}\n{}", stack.logs());
    assert!(errors.iter().all(|e| e.contains("not a baton.v1.Task")), "{errors:?}");
}
