//! Certificate trust for FTPS: the rustls client configuration shared by every connection of
//! one endpoint, and the verifier that checks the server certificate against the system's CAs,
//! a CA file, or a pinned SHA-256 fingerprint.
//!
//! Owns the rule that a certificate is never accepted silently: a refusal is recorded with the
//! certificate's fingerprint and a sentence saying how to trust it, and the caller turns that
//! into a `HostKey` error (suppaftp only passes TLS failures on as text). One `ClientConfig`
//! per endpoint, with a TLS session cache per login, so data connections resume their own
//! control connection's session (vsftpd's `require_ssl_reuse`). It offers TLS 1.3 and 1.2, or 1.2 only
//! (`tls_max_version`). Only the aws-lc-rs provider is used: a second provider in the binary
//! would make rustls panic.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use super::tls_stream::FtpTlsConnector;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CipherSuite, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::config::flow::{CertTrust, TlsVersion};

/// Server names a login's session cache holds: one (its own server), with room to spare.
const SESSIONS_PER_LOGIN: usize = 4;

/// `SHA256:AB:CD:…` of a DER certificate, as `openssl x509 -noout -fingerprint -sha256`
/// prints it (after `=`), and as `fingerprint:` in a flow takes it.
pub fn cert_fingerprint(der: &[u8]) -> String {
    digest_fingerprint(&Sha256::digest(der).into())
}

/// The TLS side of an endpoint: a connector factory and the last refusal of a certificate.
pub(super) struct Tls {
    config: Arc<rustls::ClientConfig>,
    verifier: Arc<Verifier>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("trust", &self.verifier.source).finish_non_exhaustive()
    }
}

impl Tls {
    /// Builds the client configuration. Fails (with a message for a `Config` error) when the CA
    /// file cannot be read or holds no certificate, or the system has no trusted CAs.
    pub fn new(trust: &CertTrust, max_version: TlsVersion) -> Result<Tls, String> {
        let provider = Arc::new(provider());
        let (policy, source) = match trust {
            CertTrust::Fingerprint(want) => (Policy::Pin(*want), "the pinned fingerprint".to_string()),
            CertTrust::CaFile(path) => {
                let mut roots = RootCertStore::empty();
                let iter = CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
                for cert in iter {
                    let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
                    roots.add(cert).map_err(|e| format!("CA file {}: unusable certificate: {e}", path.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!("CA file {} holds no PEM certificate", path.display()));
                }
                (Policy::WebPki(webpki(roots, &provider)?), format!("the CAs in {}", path.display()))
            }
            CertTrust::SystemRoots => (Policy::WebPki(webpki(system_roots()?, &provider)?), "the system's trusted CAs".to_string()),
        };
        let verifier = Arc::new(Verifier { policy, source, provider: provider.clone(), refusal: Mutex::new(None) });
        let versions: &[&rustls::SupportedProtocolVersion] = match max_version {
            TlsVersion::V1_2 => &[&rustls::version::TLS12],
            TlsVersion::V1_3 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Tls { config: Arc::new(config), verifier })
    }

    /// A connector for one login: its control connection and, through suppaftp, every data
    /// connection it opens. Each login gets a session cache of its own, so a data connection
    /// resumes its own control connection's session: vsftpd runs every login in a process with
    /// its own session-ticket keys, and a data connection that offered another login's ticket
    /// (one cache per endpoint, keyed by host name only) got a full handshake and "522 SSL
    /// connection failed: session reuse required" — 1 in about 70 data connections with four
    /// logins moving files of a MiB.
    pub fn connector(&self) -> FtpTlsConnector {
        let mut config = (*self.config).clone();
        config.resumption = rustls::client::Resumption::in_memory_sessions(SESSIONS_PER_LOGIN);
        FtpTlsConnector(suppaftp::tokio_rustls::TlsConnector::from(Arc::new(config)))
    }

    /// The client configuration (for a handshake outside suppaftp: `wharf probe` asks the
    /// negotiated TLS version and cipher suite, which suppaftp does not expose).
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// Why the last certificate was refused, if one was (taken, so it is reported once).
    pub fn take_refusal(&self) -> Option<String> {
        self.verifier.refusal.lock().ok().and_then(|mut r| r.take())
    }
}

/// aws-lc-rs with the AES-128-GCM suites offered first (TLS 1.3 and 1.2). Servers such as
/// vsftpd take the client's order, and a data connection is a new handshake for every file
/// transferred: with AES-256-GCM the key schedule runs on SHA-384, which has no CPU
/// instructions here, while SHA-256 has (SHA-NI). On an FTPS pull of 5000 small files SHA-384
/// was 3 % of the client's CPU. AES-128 is what the SSH side prefers too (`sftp/algorithms.rs`).
fn provider() -> CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    // A stable sort: the other suites keep the provider's own order.
    provider.cipher_suites.sort_by_key(|s| !matches!(s.suite(), AES_128_GCM_TLS13 | AES_128_GCM_ECDSA | AES_128_GCM_RSA));
    provider
}

const AES_128_GCM_TLS13: CipherSuite = CipherSuite::TLS13_AES_128_GCM_SHA256;
const AES_128_GCM_ECDSA: CipherSuite = CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256;
const AES_128_GCM_RSA: CipherSuite = CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;

fn webpki(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| format!("TLS setup failed: {e}"))
}

/// The system's trusted CAs, read once per process.
fn system_roots() -> Result<RootCertStore, String> {
    static ROOTS: OnceLock<Result<RootCertStore, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "Skipping an unreadable system CA certificate.");
            }
            let mut roots = RootCertStore::empty();
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("no trusted CA certificates found on this system (install ca-certificates, or set `ca_file` or \
                            `fingerprint`)"
                    .to_string());
            }
            Ok(roots)
        })
        .clone()
}

enum Policy {
    WebPki(Arc<WebPkiServerVerifier>),
    Pin([u8; 32]),
}

/// Checks the server certificate and remembers why it refused one.
struct Verifier {
    policy: Policy,
    /// What certificates are checked against, for messages.
    source: String,
    provider: Arc<CryptoProvider>,
    refusal: Mutex<Option<String>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Verifier {
    fn refuse(&self, message: String) {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(message);
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = cert_fingerprint(end_entity);
        match &self.policy {
            Policy::Pin(want) => {
                if Sha256::digest(end_entity.as_ref()).as_slice() == want {
                    return Ok(ServerCertVerified::assertion());
                }
                self.refuse(format!(
                    "the server's TLS certificate {fingerprint} does not match the pinned fingerprint {}; if the server's \
                     certificate was replaced on purpose, pin the new one: `fingerprint: \"{fingerprint}\"`",
                    digest_fingerprint(want)
                ));
                Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
            }
            Policy::WebPki(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).inspect_err(|e| {
                    let e = why_refused(e, server_name);
                    self.refuse(format!(
                        "the server's TLS certificate {fingerprint} is not trusted ({e}; checked against {}); if this is the \
                     right server, give the CA that issued its certificate in `ca_file`, or pin the certificate: \
                     `fingerprint: \"{fingerprint}\"`",
                        self.source
                    ))
                })
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The handshake signature proves the server holds the certificate's key, pinned or not.
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Why rustls refused a certificate, in plain words for the common reasons (before, rustls's
/// own text, for a self-signed certificate `invalid peer certificate:
/// Other(OtherError(CaUsedAsEndEntity))`); its text for the others.
fn why_refused(e: &rustls::Error, server_name: &ServerName<'_>) -> String {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(cert) = e else { return e.to_string() };
    match cert {
        C::UnknownIssuer => "it was not issued by a CA trusted here (a self-signed certificate is not)".into(),
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet (or this machine's clock is behind)".into(),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("it was not issued for `{}`, the endpoint's `host` ({e})", server_name.to_str())
        }
        C::Revoked => "it was revoked".into(),
        C::Other(other) if matches!(other.0.downcast_ref::<webpki::Error>(), Some(webpki::Error::CaUsedAsEndEntity)) => {
            "it is a CA certificate used as the server's own, as a self-signed one made with `openssl req -x509` is".into()
        }
        _ => e.to_string(),
    }
}

fn digest_fingerprint(digest: &[u8; 32]) -> String {
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("SHA256:{}", hex.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before, a self-signed certificate (a CA one) was refused `invalid peer certificate:
    /// Other(OtherError(CaUsedAsEndEntity))`.
    #[test]
    fn a_refused_certificate_is_told_why_in_plain_words() {
        use rustls::CertificateError as C;
        let name = ServerName::try_from("ftp.example.com").unwrap();
        let why = |c: C| why_refused(&rustls::Error::InvalidCertificate(c), &name);
        let ca = C::Other(rustls::OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        assert_eq!(why(ca), "it is a CA certificate used as the server's own, as a self-signed one made with `openssl req -x509` is");
        assert_eq!(why(C::UnknownIssuer), "it was not issued by a CA trusted here (a self-signed certificate is not)");
        assert_eq!(why(C::Expired), "it has expired");
        assert!(why(C::NotValidForName).starts_with("it was not issued for `ftp.example.com`, the endpoint's `host` ("));
        assert_eq!(why_refused(&rustls::Error::DecryptError, &name), rustls::Error::DecryptError.to_string());
    }

    #[test]
    fn fingerprints_print_like_openssl() {
        let fp = cert_fingerprint(b"");
        assert_eq!(fp, "SHA256:E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55");
        // What validation accepts is what the messages print.
        let parsed = crate::config::validate::parse_cert_fingerprint(&fp).unwrap();
        assert_eq!(digest_fingerprint(&parsed), fp);
        // And what OpenSSL 3 prints (`sha256 Fingerprint=…`, any case).
        let openssl = fp.replace("SHA256:", "sha256 Fingerprint=").to_lowercase();
        assert_eq!(crate::config::validate::parse_cert_fingerprint(&openssl).unwrap(), parsed);
        assert!(crate::config::validate::parse_cert_fingerprint("MD5:00").is_err());
        // The digits alone, as copied from after OpenSSL's `=` (was refused).
        assert_eq!(crate::config::validate::parse_cert_fingerprint(fp.trim_start_matches("SHA256:")).unwrap(), parsed);
        assert_eq!(crate::config::validate::parse_cert_fingerprint(&fp[7..].replace(':', "")).unwrap(), parsed);
        // A SHA-1 one (`-fingerprint` without `-sha256`) is named as such.
        let sha1 = crate::config::validate::parse_cert_fingerprint(&fp[7..7 + 59]).unwrap_err();
        assert!(sha1.ends_with("this one has 40, a SHA-1 fingerprint: add `-sha256`"), "{sha1}");
        assert!(crate::config::validate::parse_cert_fingerprint("").is_err());
    }

    #[test]
    fn aes_128_gcm_is_offered_first_and_nothing_is_dropped() {
        let default = rustls::crypto::aws_lc_rs::default_provider();
        let ours = provider();
        let suites: Vec<CipherSuite> = ours.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites.len(), default.cipher_suites.len());
        let first_13 = ours.cipher_suites.iter().find(|s| s.version() == &rustls::version::TLS13).unwrap();
        assert_eq!(first_13.suite(), CipherSuite::TLS13_AES_128_GCM_SHA256);
        let first_12 = ours.cipher_suites.iter().find(|s| s.version() == &rustls::version::TLS12).unwrap();
        assert!(matches!(first_12.suite(), AES_128_GCM_ECDSA | AES_128_GCM_RSA), "{suites:?}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = Tls::new(&CertTrust::CaFile(missing.clone()), TlsVersion::V1_3).unwrap_err();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = Tls::new(&CertTrust::CaFile(empty), TlsVersion::V1_3).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(Tls::new(&CertTrust::Fingerprint([7; 32]), TlsVersion::V1_2).is_ok());
    }
}
