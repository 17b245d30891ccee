//! The coordinator's certificate authority: created once in the data dir, it signs the server
//! certificate (re-issued at every start so it names every current address) and the client
//! certificates of enrolled agents, whose common name is the agent id.
//!
//! This module owns key material on disk; nothing else reads `ca.key`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;

/// The CA outlives many server and agent certificates.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Server certificates are re-issued at each start; a year leaves ample room.
const SERVER_VALIDITY: Duration = Duration::from_secs(365 * 86_400);
/// Agent certificates live 30 days: a stolen key is useful for weeks at most, and agents renew over
/// their session once two thirds have passed (20 days), so a host may be off for 10 days without
/// having to enrol again.
pub const AGENT_VALIDITY: Duration = Duration::from_secs(30 * 86_400);
/// Tolerated clock skew between hosts when a certificate starts being valid.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error(
        "{path} is not a valid PEM certificate; restore it from backup or move the data dir aside to start a new CA"
    )]
    BadCaFile { path: PathBuf },
    #[error("the certificate signing request is invalid: {0}")]
    BadCsr(rcgen::Error),
}

/// The certificate authority, loaded from `ca.pem` / `ca.key`.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Ca")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PkiError + 'a {
    move |source| PkiError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a secret file readable only by its owner.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

fn validity(params: &mut CertificateParams, length: Duration) {
    let now = OffsetDateTime::now_utc();
    // Backdated for clock skew, but by at most a tenth of the lifetime: agents renew at two
    // thirds of (not_after - not_before), which must stay close to two thirds of `length`.
    params.not_before = now - BACKDATE.min(length / 10);
    params.not_after = now + length;
}

impl Ca {
    /// Loads the CA from `dir`, or creates it there. The flag says whether it was created.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        if cert_path.exists() {
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(io("read", &cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io("read", &key_path))?;
            let key = KeyPair::from_pem(&key_pem)?;
            let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| {
                PkiError::BadCaFile {
                    path: cert_path.clone(),
                }
            })?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
            return Ok((
                Self {
                    issuer,
                    cert_pem,
                    cert_der,
                },
                false,
            ));
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Rampart CA");
        dn.push(DnType::OrganizationName, "Rampart");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        write_private(&key_path, key.serialize_pem().as_bytes()).map_err(io("write", &key_path))?;
        std::fs::write(&cert_path, cert.pem()).map_err(io("write", &cert_path))?;
        let cert_pem = cert.pem();
        let cert_der = cert.der().clone();
        Ok((
            Self {
                issuer: Issuer::new(params, key),
                cert_pem,
                cert_der,
            },
            true,
        ))
    }

    /// `sha256:<hex>` of the CA certificate: what agents pin at enrolment.
    pub fn fingerprint(&self) -> String {
        rampart_common::tls::fingerprint(&self.cert_der)
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a server certificate naming `dns_names` and `ips`. Returns (chain PEM with the CA
    /// certificate after the leaf, so agents can find the CA they pinned; key PEM).
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<(String, String), PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "rampart coordinator");
        params.distinguished_name = dn;
        for name in dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.as_str().try_into()?));
        }
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, SERVER_VALIDITY);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((
            format!("{}{}", cert.pem(), self.cert_pem),
            key.serialize_pem(),
        ))
    }

    /// Signs an agent's CSR for `lifetime`. The subject it asked for is ignored: the certificate's
    /// common name is `agent_id`, and it is good only for client authentication.
    pub fn sign_agent(
        &self,
        csr_pem: &str,
        agent_id: &str,
        lifetime: Duration,
    ) -> Result<String, PkiError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(PkiError::BadCsr)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id);
        dn.push(DnType::OrganizationName, "Rampart agents");
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, lifetime);
        Ok(params.signed_by(&csr.public_key, &self.issuer)?.pem())
    }
}

/// When a certificate expires (Unix ms).
pub fn expiry_ms_of(der: &[u8]) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}

/// The agent id carried in a client certificate (its common name).
pub fn agent_id_of(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_persists_and_signs_agents() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, created) = Ca::load_or_create(dir.path()).unwrap();
        assert!(created);
        let (again, created) = Ca::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(ca.fingerprint(), again.fingerprint());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        let key = KeyPair::generate().unwrap();
        let mut req = CertificateParams::default();
        req.distinguished_name
            .push(DnType::CommonName, "i-want-to-be-admin");
        let csr = req.serialize_request(&key).unwrap().pem().unwrap();
        let pem = again
            .sign_agent(&csr, "agent-1234", Duration::from_secs(6))
            .unwrap();
        let der = rampart_common::tls::certs_from_pem(pem.as_bytes(), "agent").unwrap();
        let expires = expiry_ms_of(&der[0]).unwrap();
        let now = rampart_common::time::now_ms();
        assert!(
            (now + 4_000..=now + 7_000).contains(&expires),
            "{expires} vs {now}"
        );
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(agent_id_of(&der).as_deref(), Some("agent-1234"));
        assert!(matches!(
            again.sign_agent("garbage", "x", AGENT_VALIDITY),
            Err(PkiError::BadCsr(_))
        ));
    }

    #[test]
    fn server_chain_ends_with_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = Ca::load_or_create(dir.path()).unwrap();
        let (chain, _key) = ca
            .issue_server(&["localhost".into()], &["127.0.0.1".parse().unwrap()])
            .unwrap();
        let certs = rampart_common::tls::certs_from_pem(chain.as_bytes(), "chain").unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(
            rampart_common::tls::fingerprint(&certs[1]),
            ca.fingerprint()
        );
    }
}
