//! The vendored tansu is the crates.io release plus `vendor/patches/`, nothing else
//! (`vendor/tansu-patches.sh check`), and requests tansu 0.6.0 met with `todo!()` — a
//! panic in the connection's task, so the client saw its connection drop with no
//! answer — are answered with Kafka error codes on both engines, the connection still
//! serving. Those requests are framed by hand (tansu's own protocol crate) because no
//! client library sends some of them: AddPartitionsToTxn version 4 is a broker's request.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use tansu_sans_io::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ApiVersionsRequest,
    ApiVersionsResponse, Body, ConfigResource, ErrorCode, Frame, Header,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, InitProducerIdRequest,
    InitProducerIdResponse, OpType,
    add_partitions_to_txn_request::AddPartitionsToTxnTransaction,
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A topic the contract set-up creates, so every request names something that exists.
const TOPIC: &str = "loyalty.member-events.v1";

/// One Kafka connection sending one request at a time.
struct Connection {
    stream: TcpStream,
    correlation_id: i32,
}

impl Connection {
    async fn open(bootstrap_servers: &str) -> Connection {
        Connection {
            stream: TcpStream::connect(bootstrap_servers).await.unwrap(),
            correlation_id: 0,
        }
    }

    /// Sends `body` as `version` of its API; the decoded answer. Panics (failing the
    /// test) when the broker closes the connection instead of answering.
    async fn ask(&mut self, api_key: i16, version: i16, body: Body) -> Body {
        self.correlation_id += 1;
        let header = Header::Request {
            api_key,
            api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("vendored-tansu-test".into()),
        };
        let request = Frame::request(header, body).unwrap();
        self.stream.write_all(&request).await.unwrap();

        let mut size = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut size))
            .await
            .expect("the broker answers within 10 s")
            .expect("the broker answers instead of closing the connection");
        let mut response = size.to_vec();
        response.resize(4 + i32::from_be_bytes(size) as usize, 0);
        self.stream.read_exact(&mut response[4..]).await.unwrap();
        let frame = Frame::response_from_bytes(&response[..], api_key, version).unwrap();
        match frame.header {
            Header::Response { correlation_id } => assert_eq!(correlation_id, self.correlation_id),
            other => panic!("not a response header: {other:?}"),
        }
        frame.body
    }
}

fn error(code: i16) -> ErrorCode {
    ErrorCode::try_from(code).unwrap()
}

async fn alter_topic_config(connection: &mut Connection, operation: i8) -> (ErrorCode, String) {
    let request = IncrementalAlterConfigsRequest::default()
        .resources(Some(vec![
            AlterConfigsResource::default()
                .resource_type(ConfigResource::Topic.into())
                .resource_name(TOPIC.into())
                .configs(Some(vec![
                    AlterableConfig::default()
                        .name("cleanup.policy".into())
                        .config_operation(operation)
                        .value(Some("compact".into())),
                ])),
        ]))
        .validate_only(false);
    let body = connection
        .ask(IncrementalAlterConfigsRequest::KEY, 1, request.into())
        .await;
    let response = IncrementalAlterConfigsResponse::try_from(body).unwrap();
    let resources = response.responses.unwrap_or_default();
    assert_eq!(resources.len(), 1);
    (
        error(resources[0].error_code),
        resources[0].error_message.clone().unwrap_or_default(),
    )
}

/// Fails on drift: an edit under `vendor/tansu-*` that no patch carries would be lost
/// the next time the series is re-applied to a tansu release.
#[test]
fn the_vendored_crates_are_the_release_plus_the_patch_series() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vendor/tansu-patches.sh");
    let out = Command::new(&script)
        .arg("check")
        .output()
        .expect("bash runs vendor/tansu-patches.sh");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_tansu_left_as_todo_are_answered_with_error_codes() {
    let (_dir, engines) = both_engines("vendored-tansu");
    for (engine, storage) in engines {
        let stack = start_stack_with(&free_ports(storage)).await;
        let mut connection = Connection::open(&stack.bootstrap_servers).await;

        // APPEND and SUBTRACT, and an operation Kafka does not define.
        for (operation, expected) in [
            (i8::from(OpType::Append), ErrorCode::InvalidConfig),
            (i8::from(OpType::Subtract), ErrorCode::InvalidConfig),
            (7, ErrorCode::InvalidRequest),
        ] {
            let (answer, message) = alter_topic_config(&mut connection, operation).await;
            assert_eq!(
                answer, expected,
                "{engine}: operation {operation}: {message}"
            );
            assert!(!message.is_empty(), "{engine}: operation {operation}");
        }
        // SET still works, on the same connection.
        let (answer, message) = alter_topic_config(&mut connection, OpType::Set.into()).await;
        assert_eq!(answer, ErrorCode::None, "{engine}: set: {message}");

        // AddPartitionsToTxn version 4: a broker verifying a transaction.
        let verify = AddPartitionsToTxnRequest::default().transactions(Some(vec![
            AddPartitionsToTxnTransaction::default()
                .transactional_id("broker-requests".into())
                .producer_id(1)
                .producer_epoch(0)
                .verify_only(true)
                .topics(Some(vec![])),
        ]));
        let body = connection
            .ask(AddPartitionsToTxnRequest::KEY, 4, verify.into())
            .await;
        let response = AddPartitionsToTxnResponse::try_from(body).unwrap();
        assert_eq!(
            response.error_code.map(error),
            Some(ErrorCode::UnsupportedVersion),
            "{engine}: {response:?}"
        );

        // InitProducerId naming a producer and epoch (KIP-360's epoch bump).
        let bump = InitProducerIdRequest::default()
            .transactional_id(None)
            .transaction_timeout_ms(60_000)
            .producer_id(Some(42))
            .producer_epoch(Some(3));
        let body = connection
            .ask(InitProducerIdRequest::KEY, 4, bump.into())
            .await;
        let response = InitProducerIdResponse::try_from(body).unwrap();
        assert_ne!(error(response.error_code), ErrorCode::None, "{engine}");
        assert_eq!(response.producer_id, -1, "{engine}");

        // The same connection is still served.
        let body = connection
            .ask(
                ApiVersionsRequest::KEY,
                3,
                ApiVersionsRequest::default()
                    .client_software_name(Some("vendored-tansu-test".into()))
                    .client_software_version(Some("1".into()))
                    .into(),
            )
            .await;
        let versions = ApiVersionsResponse::try_from(body).unwrap();
        assert_eq!(error(versions.error_code), ErrorCode::None, "{engine}");

        stack.shutdown().await;
    }
}
