//! Enrolment: pin the coordinator's CA by fingerprint, generate a key here, send a CSR with the
//! join token, store the certificate. The private key never leaves the host.

use std::collections::BTreeMap;

use rampart_common::tls;
use rampart_proto::v1::EnrollRequest;
use rampart_proto::v1::agent_service_client::AgentServiceClient;
use rcgen::{CertificateParams, KeyPair};
use tracing::info;

use crate::AgentError;
use crate::state::{Enrolment, Identity, StateDir, StateError};

/// What `rampart-agent enroll` needs.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub coordinator: String,
    pub token: rampart_common::Secret,
    pub ca_fingerprint: String,
    pub state: StateDir,
    pub labels: BTreeMap<String, String>,
    /// Replace an existing enrolment.
    pub force: bool,
}

/// Enrols and stores the result in the state dir.
pub async fn enroll(opts: EnrollOptions) -> Result<Enrolment, AgentError> {
    if let Some(existing) = opts.state.identity()?
        && !opts.force
    {
        return Err(StateError::AlreadyEnrolled {
            agent_id: existing.agent_id,
            dir: opts.state.path().to_path_buf(),
        }
        .into());
    }
    if opts.token.expose().is_empty() {
        return Err(AgentError::Invalid(
            "the join token is empty; pass --token or set RAMPART_JOIN_TOKEN".into(),
        ));
    }
    let ca_pem = tls::fetch_pinned_ca(&opts.coordinator, &opts.ca_fingerprint).await?;
    info!(coordinator = %opts.coordinator, "coordinator CA matches the pinned fingerprint");
    let channel = tls::dial(
        &opts.coordinator,
        tls::client_config(ca_pem.as_bytes(), None)?,
    )
    .await?;
    let key = KeyPair::generate()?;
    let csr = CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let host = crate::host::describe();
    let mut client = AgentServiceClient::new(channel)
        .max_decoding_message_size(rampart_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(rampart_proto::MAX_MESSAGE_BYTES);
    let resp = client
        .enroll(EnrollRequest {
            token: opts.token.expose().to_string(),
            csr_pem: csr,
            hostname: host.hostname,
            labels: opts.labels.into_iter().collect(),
        })
        .await
        .map_err(|s| AgentError::EnrollRefused(s.message().to_string()))?
        .into_inner();
    // The CA in the answer must be the one we pinned, not merely one the server chose to send.
    let returned =
        tls::certs_from_pem(resp.ca_pem.as_bytes(), "the CA returned by the coordinator")?;
    if tls::fingerprint(&returned[0]) != tls::normalize_fingerprint(&opts.ca_fingerprint)? {
        return Err(AgentError::EnrollRefused(
            "the coordinator returned a different CA than the pinned one".into(),
        ));
    }
    let enrolment = Enrolment {
        identity: Identity {
            agent_id: resp.agent_id,
            coordinator: opts.coordinator,
            labels: resp.labels.into_iter().collect(),
        },
        cert_pem: resp.certificate_pem,
        key_pem: key.serialize_pem(),
        ca_pem,
    };
    opts.state.save(&enrolment)?;
    info!(agent = %enrolment.identity.agent_id, "enrolled");
    Ok(enrolment)
}
