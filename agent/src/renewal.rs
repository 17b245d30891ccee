//! Certificate renewal over the live session. Once two thirds of the certificate's life have
//! passed, the agent generates a new key on the host and sends only its CSR; the coordinator
//! answers with the new certificate, which is saved (see `StateDir::save_renewed`) and used from
//! the next connection on. No join token, no re-enrolment.

use std::time::Duration;

use rampart_common::time::now_ms;
use rampart_proto::v1::{AgentMessage, CertificateRenewed, RenewCertificate, agent_message};
use rcgen::{CertificateParams, KeyPair};
use tracing::{info, warn};

use crate::state::{Enrolment, StateDir};

/// After a request gets no answer, or a refusal, ask again after this long (at most).
const RETRY: Duration = Duration::from_secs(60);

/// A certificate's validity, Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before_ms: i64,
    pub not_after_ms: i64,
}

impl Validity {
    /// When to renew: two thirds into the certificate's life.
    pub fn renew_at_ms(&self) -> i64 {
        self.not_before_ms + (self.not_after_ms - self.not_before_ms) * 2 / 3
    }
}

/// Reads a certificate's validity; None if it cannot be parsed.
pub fn validity(cert_pem: &str) -> Option<Validity> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let der = rampart_common::tls::certs_from_pem(cert_pem.as_bytes(), "certificate").ok()?;
    let (_, cert) = X509Certificate::from_der(der.first()?).ok()?;
    let v = cert.validity();
    Some(Validity {
        not_before_ms: v.not_before.timestamp() * 1000,
        not_after_ms: v.not_after.timestamp() * 1000,
    })
}

/// The renewal state of one session.
pub struct Renewal {
    /// When to send the next request; None: never (no state dir, or an unreadable certificate).
    due_ms: Option<i64>,
    /// The key of the request in flight; it never leaves the host.
    pending: Option<KeyPair>,
    /// How long to wait before asking again.
    retry: Duration,
}

impl std::fmt::Debug for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewal")
            .field("due_ms", &self.due_ms)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

impl Renewal {
    pub fn new(cert_pem: &str, enabled: bool) -> Self {
        let v = validity(cert_pem);
        let retry = v
            .map(|v| {
                Duration::from_millis(((v.not_after_ms - v.not_before_ms) / 10).max(1000) as u64)
            })
            .unwrap_or(RETRY)
            .min(RETRY);
        Self {
            due_ms: enabled.then(|| v.map(|v| v.renew_at_ms())).flatten(),
            pending: None,
            retry,
        }
    }

    /// Resolves when a request is due (never, when renewal is off).
    pub async fn due(&self) {
        match self.due_ms {
            Some(at) => {
                let wait = (at - now_ms()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(wait)).await
            }
            None => std::future::pending().await,
        }
    }

    /// A new key and the request carrying its CSR; asks again after `retry` unless answered.
    pub fn request(&mut self, agent_id: &str) -> Result<AgentMessage, rcgen::Error> {
        self.due_ms = Some(now_ms() + self.retry.as_millis() as i64);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, agent_id);
        let csr_pem = params.serialize_request(&key)?.pem()?;
        self.pending = Some(key);
        info!("certificate past two thirds of its life: asking the coordinator to renew it");
        Ok(AgentMessage {
            body: Some(agent_message::Body::Renew(RenewCertificate { csr_pem })),
        })
    }

    /// Handles the coordinator's answer: saves the new pair and puts it in `enrolment`.
    pub fn received(
        &mut self,
        answer: CertificateRenewed,
        state: &StateDir,
        enrolment: &mut Enrolment,
    ) {
        let Some(key) = self.pending.take() else {
            warn!("a renewed certificate arrived that this agent did not ask for; ignored");
            return;
        };
        if !answer.error.is_empty() {
            warn!(error = %answer.error, retry_in = ?self.retry, "the coordinator refused to renew the certificate");
            return;
        }
        let Some(v) = validity(&answer.certificate_pem) else {
            warn!("the renewed certificate cannot be read; keeping the current one");
            return;
        };
        let key_pem = key.serialize_pem();
        if let Err(e) = state.save_renewed(&key_pem, &answer.certificate_pem) {
            warn!(%e, "could not save the renewed certificate; keeping the current one");
            return;
        }
        enrolment.key_pem = key_pem;
        enrolment.cert_pem = answer.certificate_pem;
        self.due_ms = Some(v.renew_at_ms());
        info!(
            expires = %rampart_common::time::format_ms(v.not_after_ms),
            "certificate renewed; the new one is used from the next connection"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_at_two_thirds() {
        let v = Validity {
            not_before_ms: 0,
            not_after_ms: 30 * 86_400_000,
        };
        assert_eq!(v.renew_at_ms(), 20 * 86_400_000);
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.not_before = rcgen::date_time_ymd(2030, 1, 1);
        p.not_after = rcgen::date_time_ymd(2030, 1, 31);
        let cert = p.self_signed(&key).unwrap().pem();
        let start = 1_893_456_000_000;
        assert_eq!(
            validity(&cert),
            Some(Validity {
                not_before_ms: start,
                not_after_ms: start + 30 * 86_400_000
            })
        );
        assert!(Renewal::new(&cert, false).due_ms.is_none());
        assert_eq!(
            Renewal::new(&cert, true).due_ms,
            Some(start + 20 * 86_400_000)
        );
    }
}
