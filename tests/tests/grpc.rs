//! The coordinator as any gRPC client sees it: health and reflection for discovery, bounded and
//! validated messages, and a server that keeps serving after bad input.

use bytes::{Buf, BufMut};
use rampart_common::tls;
use rampart_e2e::Harness;
use rampart_proto::v1::ListAgentsRequest;
use rampart_proto::v1::fleet_service_client::FleetServiceClient;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Sends and receives raw bytes, so a test can put anything on the wire.
#[derive(Debug, Default, Clone)]
struct Raw;
#[derive(Debug)]
struct RawEncoder;
#[derive(Debug)]
struct RawDecoder;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let v = src.chunk().to_vec();
        src.advance(v.len());
        Ok(Some(v))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn channel(h: &Harness) -> Channel {
    let ca = std::fs::read(h.data_dir.join("ca.pem")).unwrap();
    tls::dial(&h.url(), tls::client_config(&ca, None).unwrap())
        .await
        .unwrap()
}

fn authed<T>(h: &Harness, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", h.admin_token).parse().unwrap(),
    );
    req
}

#[test]
fn oversized_and_malformed_messages_get_clear_codes_and_the_server_keeps_serving() {
    let h = Harness::start();
    runtime().block_on(async {
        let ch = channel(&h).await;
        let mut fleet = FleetServiceClient::new(ch.clone());

        let huge = ListAgentsRequest {
            selector: "x".repeat(rampart_proto::MAX_MESSAGE_BYTES + 1),
        };
        let err = fleet.list_agents(authed(&h, huge)).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(err.message().contains("too large"), "{}", err.message());

        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_static("/rampart.v1.FleetService/ListAgents");
        // An unterminated varint: not a protobuf message.
        let err = grpc
            .unary(authed(&h, vec![0xff, 0xff, 0xff, 0xff]), path, Raw)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("malformed"), "{}", err.message());

        let ok = fleet
            .list_agents(authed(&h, ListAgentsRequest::default()))
            .await
            .unwrap();
        assert!(ok.into_inner().agents.is_empty());
    });
}

#[test]
fn any_grpc_client_can_discover_the_services_and_their_health() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let h = Harness::start();
    runtime().block_on(async {
        let ch = channel(&h).await;
        let mut health = HealthClient::new(ch.clone());
        for service in ["", "rampart.v1.AgentService", "rampart.v1.FleetService"] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.into(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "{service}");
        }

        // v1 (grpcurl, newer tools) and v1alpha (the official Python client, several GUIs).
        let mut reflection = ServerReflectionClient::new(ch.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = reflection
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("{resp:?}")
        };
        let v1: Vec<String> = list.service.into_iter().map(|s| s.name).collect();

        use tonic_reflection::pb::v1alpha as alpha;
        let mut reflection = alpha::server_reflection_client::ServerReflectionClient::new(ch);
        let list = alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        };
        let describe = alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "rampart.v1.FleetService".into(),
                ),
            ),
        };
        let mut stream = reflection
            .server_reflection_info(tokio_stream::iter(vec![list, describe]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.message().await.unwrap().unwrap();
        let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            resp.message_response
        else {
            panic!("{resp:?}")
        };
        let v1alpha: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        let resp = stream.message().await.unwrap().unwrap();
        let Some(alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
            files,
        )) = resp.message_response
        else {
            panic!("{resp:?}")
        };
        assert!(!files.file_descriptor_proto.is_empty());
        for names in [&v1, &v1alpha] {
            for want in [
                "rampart.v1.AgentService",
                "rampart.v1.FleetService",
                "rampart.v1.TokenService",
                "rampart.v1.AuditService",
                "grpc.health.v1.Health",
            ] {
                assert!(
                    names.iter().any(|n| n == want),
                    "{want} missing from {names:?}"
                );
            }
        }
    });
}
