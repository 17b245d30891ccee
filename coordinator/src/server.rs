//! Starting and stopping the coordinator: data dir, CA, database, TLS server with every service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rampart_proto::MAX_MESSAGE_BYTES;
use rampart_proto::v1::agent_service_server::AgentServiceServer;
use rampart_proto::v1::audit_service_server::AuditServiceServer;
use rampart_proto::v1::chaos_service_server::ChaosServiceServer;
use rampart_proto::v1::compliance_service_server::ComplianceServiceServer;
use rampart_proto::v1::experiment_service_server::ExperimentServiceServer;
use rampart_proto::v1::fleet_service_server::FleetServiceServer;
use rampart_proto::v1::threat_service_server::ThreatServiceServer;
use rampart_proto::v1::token_service_server::TokenServiceServer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tracing::{info, warn};

use crate::api::agent::AgentApi;
use crate::api::audit::AuditApi;
use crate::api::chaos::ChaosApi;
use crate::api::compliance::ComplianceApi;
use crate::api::experiments::ExperimentApi;
use crate::api::fleet::FleetApi;
use crate::api::threats::ThreatApi;
use crate::api::tokens::{TokenApi, new_secret};
use crate::api::{AppState, InputStatusLayer};
use crate::fleet::Fleet;
use crate::pki::{Ca, PkiError, write_private};
use crate::store::{Role, Store, StoreError};

/// Open sessions get this long to end after shutdown is asked for.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// HTTP/2 pings keep NAT entries alive and notice dead peers.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake that takes longer than this is abandoned.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Name of the file holding the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Join(#[from] crate::peers::JoinError),
    #[error("cannot use data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on {addr}: {source}; is another coordinator running there? pick another with --listen"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve metrics on {addr}: {source}; pick another with --metrics-listen")]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve the web console on {addr}: {source}; pick another with --web-listen")]
    WebBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// How often ended windows of refused enrolments are written to the audit trail as summaries.
const REFUSAL_SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything `start` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Extra names/IPs for the server certificate.
    pub server_names: Vec<String>,
    /// Folder of extra policy packs (one sub-folder per pack).
    pub packs_dir: Option<PathBuf>,
    /// Rate limits on enrolment.
    pub enroll_limits: crate::api::enroll_guard::EnrollLimits,
    /// Lifetime of agent certificates.
    pub agent_cert_lifetime: std::time::Duration,
    /// Where `/metrics` is served (plain HTTP); None: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// The agent label whose values group the compliance score metric.
    pub metrics_group_label: Option<String>,
    /// Where the web console is served (HTTPS); None: not served.
    pub web_listen: Option<SocketAddr>,
    /// PostgreSQL to store in; None: SQLite in the data dir.
    pub database_url: Option<rampart_common::Secret>,
}

/// A running coordinator.
#[derive(Debug)]
pub struct Coordinator {
    /// The bound address (useful when asked for port 0).
    pub addr: SocketAddr,
    pub ca_fingerprint: String,
    /// Set only when this start created the initial admin token.
    pub initial_admin_token: Option<String>,
    /// Where `/metrics` is served, when it is.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the web console is served, when it is, and its sessions.
    pub web: Option<(SocketAddr, Arc<crate::web::console::Console>)>,
    pub state: Arc<AppState>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Coordinator {
    /// Waits for the server to stop (after the cancellation token given to `start` fires), giving
    /// sessions [`SHUTDOWN_DEADLINE`] to close.
    pub async fn wait(self) -> Result<(), ServeError> {
        let mut server = self.server;
        let shutdown = self.state.shutdown.clone();
        let result = tokio::select! {
            r = &mut server => Some(r),
            _ = shutdown.cancelled() => None,
        };
        let result = match result {
            Some(r) => r,
            None => match tokio::time::timeout(SHUTDOWN_DEADLINE, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    warn!("sessions did not close within {SHUTDOWN_DEADLINE:?}; stopping anyway");
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        crate::api::agent::write_refusal_summaries(&self.state, true).await;
        self.state.fleet.heartbeats.flush(&self.state.store).await;
        crate::peers::leave(&self.state.store).await;
        self.state.store.close().await;
        match result {
            Ok(r) => r.map_err(ServeError::from),
            Err(join) => {
                warn!(%join, "server task ended abnormally");
                Ok(())
            }
        }
    }
}

fn create_data_dir(dir: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| ServeError::DataDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Every name the server certificate should carry: hostname, localhost, loopback, the listen IP
/// (every local address when listening on all), plus configured extras.
pub fn certificate_names(listen: &SocketAddr, extra: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = vec!["localhost".to_string()];
    if let Ok(h) = nix::unistd::gethostname()
        && let Some(h) = h.to_str().filter(|h| crate::config::valid_dns_name(h))
    {
        dns.push(h.to_string());
    }
    let mut ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    if listen.ip().is_unspecified() {
        if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
            for a in addrs {
                let Some(addr) = a.address else { continue };
                if let Some(v4) = addr.as_sockaddr_in() {
                    ips.push(IpAddr::V4(v4.ip()));
                } else if let Some(v6) = addr.as_sockaddr_in6() {
                    ips.push(IpAddr::V6(v6.ip()));
                }
            }
        }
    } else {
        ips.push(listen.ip());
    }
    for name in extra {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.clone()),
        }
    }
    dns.sort();
    dns.dedup();
    ips.sort();
    ips.dedup();
    (dns, ips)
}

/// Each agent session holds a socket: lift the soft open-files limit to the hard one so a large
/// fleet does not hit the usual default of 1024.
/// Files the coordinator keeps open besides agent sessions: listeners, database connections,
/// operator and console connections, logs, packs being read.
const RESERVED_FILES: u64 = 512;

/// Raises the soft open-files limit to the hard one and says how many agent sessions (one socket
/// each) it leaves room for; returns that number.
fn raise_open_files_limit() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((mut soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => soft = hard,
            Err(e) => {
                warn!(%e, soft, hard, "could not raise the open-files limit to its hard limit")
            }
        }
    }
    let room = soft.saturating_sub(RESERVED_FILES);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if room < 1000 {
        warn!(
            open_files_limit = soft,
            agent_sessions = room,
            "the open-files limit leaves room for few agent sessions; raise LimitNOFILE (systemd) or `ulimit -n`"
        );
    } else {
        info!(
            open_files_limit = soft,
            agent_sessions = room,
            "the open-files limit leaves room for about {room} agent sessions"
        );
    }
    room
}

/// Starts the coordinator; it stops when `shutdown` is cancelled.
pub async fn start(
    settings: &Settings,
    shutdown: CancellationToken,
) -> Result<Coordinator, ServeError> {
    let dir = &settings.data_dir;
    create_data_dir(dir)?;
    let session_room = raise_open_files_limit();
    let (ca, created) = Ca::load_or_create(dir)?;
    if created {
        info!(dir = %dir.display(), "created a new certificate authority");
    }
    let store = Store::connect(
        dir,
        settings
            .database_url
            .as_ref()
            .map(rampart_common::Secret::expose),
    )
    .await?;
    info!(database = store.backend().as_str(), "store open");
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: settings.listen,
        source,
    })?;
    // Registered before settling: what this coordinator's previous process (or a dead peer)
    // left unfinished is settled; what live peers run is theirs.
    let coordinator_id = crate::peers::join(&store, &addr.to_string(), &ca.fingerprint()).await?;
    crate::peers::settle_orphans(&store).await?;
    let (id, secret) = new_secret("rpo");
    let initial_admin_token = if store
        .insert_first_operator_token(&id, &secret, "initial-admin", Role::Admin)
        .await?
    {
        let path = dir.join(ADMIN_TOKEN_FILE);
        write_private(&path, format!("{secret}\n").as_bytes()).map_err(|source| {
            ServeError::DataDir {
                path: path.clone(),
                source,
            }
        })?;
        info!(path = %path.display(), token_id = %id, "wrote the initial admin token (mode 0600)");
        Some(secret)
    } else {
        None
    };

    let (mut dns, mut ips) = certificate_names(&addr, &settings.server_names);
    if let Some(web) = settings.web_listen {
        let (d, i) = certificate_names(&web, &[]);
        dns.extend(d);
        ips.extend(i);
        dns.sort();
        dns.dedup();
        ips.sort();
        ips.dedup();
    }
    let (chain, key) = ca.issue_server(&dns, &ips)?;
    let web_tls = match settings.web_listen {
        Some(a) => Some(
            crate::web::console::tls_config(&chain, &key)
                .map_err(|source| ServeError::WebBind { addr: a, source })?,
        ),
        None => None,
    };
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(chain, key))
        .client_ca_root(Certificate::from_pem(ca.cert_pem()))
        // Enrolment happens before the agent has a certificate; sessions check for one.
        .client_auth_optional(true)
        .timeout(TLS_HANDSHAKE_TIMEOUT);

    let ca_fingerprint = ca.fingerprint();
    let packs = crate::compliance::Packs::load(settings.packs_dir.as_deref());
    for err in &packs.errors {
        warn!("policy pack rejected: {err}");
    }
    info!(packs = ?packs.packs.keys().collect::<Vec<_>>(), "policy packs loaded");
    let fleet = Fleet::new();
    fleet.set_capacity(session_room);
    // Coordinators sharing PostgreSQL reach each other's agents through it.
    let relay = store.database_url().map(|url| {
        let relay = crate::fleet::relay::Relay::new(store.clone(), coordinator_id.clone());
        fleet.set_relay(relay.clone());
        (relay, url.expose().to_string())
    });
    let chaos = crate::chaos::Chaos::new(store.clone(), fleet.clone(), shutdown.clone());
    let state = Arc::new(AppState {
        chaos,
        store,
        fleet,
        ca: Arc::new(ca),
        packs: Arc::new(packs),
        shutdown: shutdown.clone(),
        enroll_guard: Arc::new(crate::api::enroll_guard::EnrollGuard::new(
            settings.enroll_limits,
        )),
        agent_cert_lifetime: settings.agent_cert_lifetime,
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AgentServiceServer<AgentApi>>().await;
    health.set_serving::<FleetServiceServer<FleetApi>>().await;
    health.set_serving::<TokenServiceServer<TokenApi>>().await;
    health.set_serving::<AuditServiceServer<AuditApi>>().await;
    health
        .set_serving::<ComplianceServiceServer<ComplianceApi>>()
        .await;
    health.set_serving::<ChaosServiceServer<ChaosApi>>().await;
    health
        .set_serving::<ExperimentServiceServer<ExperimentApi>>()
        .await;
    health.set_serving::<ThreatServiceServer<ThreatApi>>().await;
    // Both reflection versions: grpcurl and newer tools speak v1, the official Python client and
    // several GUI clients still speak only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(rampart_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    macro_rules! bounded {
        ($server:ident, $api:expr) => {
            // gzip both ways when the client offers it: fact reports and sweep reports shrink
            // several times over on the wire. The size limits apply to decompressed messages.
            $server::new($api)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        };
    }
    let router = Server::builder()
        .tls_config(tls)?
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(InputStatusLayer)
        // Agents send compressed fact reports; commands to them are small and go uncompressed
        // (a compressing encoder per session costs the coordinator memory for every agent).
        .add_service(
            AgentServiceServer::new(AgentApi::new(state.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        )
        .add_service(bounded!(FleetServiceServer, FleetApi::new(state.clone())))
        .add_service(bounded!(TokenServiceServer, TokenApi::new(state.clone())))
        .add_service(bounded!(AuditServiceServer, AuditApi::new(state.clone())))
        .add_service(bounded!(
            ComplianceServiceServer,
            ComplianceApi::new(state.clone())
        ))
        .add_service(bounded!(ChaosServiceServer, ChaosApi::new(state.clone())))
        .add_service(bounded!(
            ExperimentServiceServer,
            ExperimentApi::new(state.clone())
        ))
        .add_service(bounded!(ThreatServiceServer, ThreatApi::new(state.clone())))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha);
    let summaries = state.clone();
    let stop_summaries = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                // `wait` writes what is left, before the store closes.
                _ = stop_summaries.cancelled() => break,
                _ = tokio::time::sleep(REFUSAL_SUMMARY_EVERY) => {
                    crate::api::agent::write_refusal_summaries(&summaries, false).await;
                }
            }
        }
    });
    let beats = state.clone();
    let stop_beats = shutdown.clone();
    tokio::spawn(async move {
        beats
            .fleet
            .heartbeats
            .run(beats.store.clone(), stop_beats)
            .await
    });
    if let Some((relay, url)) = &relay {
        tokio::spawn(
            relay
                .clone()
                .run(state.fleet.clone(), url.clone(), shutdown.clone()),
        );
    }
    crate::peers::spawn(
        state.clone(),
        relay.map(|(r, _)| r),
        addr.to_string(),
        shutdown.clone(),
    );
    tokio::spawn(crate::compliance::schedule::run(
        state.store.clone(),
        state.fleet.clone(),
        state.packs.clone(),
        shutdown.clone(),
    ));
    let stop = shutdown.clone();
    let server = tokio::spawn(
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned()),
    );
    info!(%addr, ca_fingerprint = %ca_fingerprint, names = ?dns, ips = ?ips, "coordinator listening");
    let metrics_addr = match settings.metrics_listen {
        Some(a) => Some(
            crate::web::serve_metrics(
                a,
                state.store.clone(),
                settings.metrics_group_label.clone(),
                shutdown.clone(),
            )
            .await
            .map_err(|source| ServeError::MetricsBind { addr: a, source })?,
        ),
        None => None,
    };
    let web = match (settings.web_listen, web_tls) {
        (Some(a), Some(tls)) => {
            let console = crate::web::console::Console::new(state.clone());
            let bound = crate::web::console::serve(a, console.clone(), tls, shutdown.clone())
                .await
                .map_err(|source| ServeError::WebBind { addr: a, source })?;
            Some((bound, console))
        }
        _ => None,
    };
    Ok(Coordinator {
        addr,
        ca_fingerprint,
        initial_admin_token,
        metrics_addr,
        web,
        state,
        server,
    })
}
