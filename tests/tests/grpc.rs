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

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

/// A small deterministic generator (xorshift), so a failing case can be replayed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = 1 + (self.next() as usize % max);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Random bytes, and every prefix of a plausible message (strings, varints, a nested message and
/// a length that runs past the end), for one method.
fn hostile_inputs(rng: &mut Xorshift) -> Vec<Vec<u8>> {
    let mut plausible = vec![0x0a, 0x05, b'a', b'g', b'e', b'n', b't', 0x10, 0x96, 0x01];
    plausible.extend([0x1a, 0x04, 0x0a, 0x02, b'k', b'v', 0x22, 0x7f, 0x01]);
    let mut inputs: Vec<Vec<u8>> = (1..plausible.len())
        .map(|n| plausible[..n].to_vec())
        .collect();
    inputs.extend((0..24).map(|_| rng.bytes(256)));
    inputs
}

#[test]
fn random_and_truncated_messages_to_every_method_get_error_statuses_and_the_server_keeps_serving() {
    use prost::Message;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let set = prost_types::FileDescriptorSet::decode(rampart_proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods: Vec<(String, bool, bool)> = set
        .file
        .iter()
        .flat_map(|f| {
            let package = f.package().to_string();
            f.service.iter().flat_map(move |s| {
                let package = package.clone();
                s.method.iter().map(move |m| {
                    (
                        format!("/{package}.{}/{}", s.name(), m.name()),
                        m.client_streaming(),
                        m.server_streaming(),
                    )
                })
            })
        })
        .collect();
    assert!(methods.len() >= 36, "{methods:?}");
    assert!(
        methods
            .iter()
            .any(|m| m.0 == "/rampart.v1.AgentService/Session")
    );

    let h = Harness::start();
    let viewer = h
        .rampart_ok(&[
            "admin", "token", "create", "--role", "viewer", "--name", "fuzz",
        ])
        .trim()
        .to_string();
    let mut rng = Xorshift(0x5eed_1234_abcd_ef01);
    let mut cases = 0usize;
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    runtime().block_on(async {
        let ch = channel(&h).await;
        for (path, client_streaming, server_streaming) in &methods {
            for input in hostile_inputs(&mut rng) {
                for token in [None, Some(viewer.as_str())] {
                    let mut grpc = tonic::client::Grpc::new(ch.clone());
                    grpc.ready().await.unwrap();
                    let uri = http::uri::PathAndQuery::try_from(path.as_str()).unwrap();
                    let result: Result<(), Status> = match (client_streaming, server_streaming) {
                        (false, false) => grpc
                            .unary(with_token(input.clone(), token), uri, Raw)
                            .await
                            .map(drop),
                        (false, true) => {
                            match grpc
                                .server_streaming(with_token(input.clone(), token), uri, Raw)
                                .await
                            {
                                Ok(r) => r.into_inner().message().await.map(drop),
                                Err(e) => Err(e),
                            }
                        }
                        _ => {
                            let stream = tokio_stream::iter(vec![input.clone()]);
                            match grpc.streaming(with_token(stream, token), uri, Raw).await {
                                Ok(r) => r.into_inner().message().await.map(drop),
                                Err(e) => Err(e),
                            }
                        }
                    };
                    cases += 1;
                    let code = match &result {
                        Ok(()) => "Ok".to_string(),
                        Err(s) => format!("{:?}", s.code()),
                    };
                    if token.is_none() {
                        assert!(result.is_err(), "{path} accepted {input:?} without a token");
                    }
                    if let Err(s) = &result {
                        assert!(
                            !matches!(s.code(), Code::Internal | Code::Unknown | Code::Unavailable),
                            "{path} with {input:?}: {s:?}"
                        );
                    }
                    *codes.entry(code).or_default() += 1;
                }
            }
        }
        let mut health = HealthClient::new(ch);
        let r = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving);
    });
    eprintln!(
        "{cases} hostile calls over {} methods: {codes:?}",
        methods.len()
    );
    // Still serving real requests.
    h.rampart_ok(&["agents", "ls"]);
    assert!(h.rampart(&["audit", "verify"]).status.success());
}
