//! The agent's errors, gathered from its modules.

use rampart_common::config::ConfigErrors;
use rampart_common::tls::TlsError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("the coordinator refused enrolment: {0}")]
    EnrollRefused(String),
    #[error("the coordinator refused this agent: {0}")]
    SessionRefused(String),
    #[error("could not create a key pair or CSR: {0}")]
    Key(#[from] rcgen::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} fault(s) or marker(s) could not be reverted; see above")]
    Recover(usize),
    #[error(
        "this agent's certificate expired at {0} (the host was off or unreachable past its lifetime); enrol it again with `rampart-agent enroll --force`"
    )]
    CertificateExpired(String),
}

impl AgentError {
    /// Process exit status: 2 for bad input, 3 when the coordinator refuses us, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            AgentError::Config(_) | AgentError::Invalid(_) => 2,
            AgentError::EnrollRefused(_)
            | AgentError::SessionRefused(_)
            | AgentError::CertificateExpired(_) => 3,
            AgentError::Tls(TlsError::FingerprintMismatch { .. } | TlsError::BadFingerprint(_)) => {
                3
            }
            _ => 1,
        }
    }
}
