//! TLS with libpq's verification rules, on rustls (ring provider) through
//! tokio-postgres-rustls, which also gives SCRAM its tls-server-end-point
//! channel binding.
//!
//! - `verify-full` checks the chain against the trusted roots and the host name;
//! - `verify-ca` checks the chain only;
//! - `require`, `prefer` and `allow` check the chain only when the root file
//!   exists (`sslrootcert`, else `~/.postgresql/root.crt`): libpq's rule, so
//!   `require` with a root file behaves like `verify-ca`; without one, nothing
//!   is verified (the connection is encrypted, the server not authenticated).
//!
//! A failed verification is explained by [`explain`]: unknown CA, name
//! mismatch, expired, or the server refusing our certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::files::check_key_permissions;
use super::settings::{RootCert, SslMode, TlsSettings};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which checks the verifier makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    None,
    Chain,
    ChainAndName,
}

/// The rustls client configuration of one target's TLS settings.
pub fn client_config(tls: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let roots = match &tls.root {
        RootCert::System => {
            let loaded = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(loaded.certs);
            if added == 0 {
                return Err("sslrootcert=system: the operating system's certificate store is empty \
                            (install the ca-certificates package, or set SSL_CERT_FILE)"
                    .into());
            }
            Some(store)
        }
        RootCert::File(path) if path.is_file() => Some(load_roots(path)?),
        RootCert::File(path) => {
            if tls.mode.verifies() {
                return Err(format!(
                    "root certificate file \"{}\" does not exist; either provide the file, use the system's trusted roots \
                     with sslrootcert=system, or change sslmode to disable server certificate verification",
                    path.display()
                ));
            }
            None
        }
    };
    let checks = match (&roots, tls.mode) {
        (None, _) => Checks::None,
        (Some(_), SslMode::VerifyFull) => Checks::ChainAndName,
        (Some(_), _) => Checks::Chain,
    };
    let webpki = match roots {
        Some(store) => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| format!("cannot use the root certificates: {e}"))?,
        ),
        None => None,
    };
    let verifier = Arc::new(Verifier {
        webpki,
        check_name: checks == Checks::ChainAndName,
        provider: provider.clone(),
    });
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls.tls13_only {
        &[&rustls::version::TLS13]
    } else if tls.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_certificate(tls)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("cannot use the client certificate {}: {e}", tls.cert.display()))?,
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = tls.sni;
    Ok(Arc::new(config))
}

fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let certs = read_certs(path, "root certificate file")?;
    let mut store = RootCertStore::empty();
    for c in certs {
        store
            .add(c)
            .map_err(|e| format!("root certificate file \"{}\": {e}", path.display()))?;
    }
    Ok(store)
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("could not read {what} \"{}\": {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("could not read {what} \"{}\": {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} \"{}\" holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// The client certificate chain and key, when the certificate file exists
/// (libpq sends none when it does not) and `sslcertmode` allows it.
fn client_certificate(tls: &TlsSettings) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
    if tls.no_client_cert || !tls.cert.is_file() {
        return Ok(None);
    }
    let chain = read_certs(&tls.cert, "certificate file")?;
    if !tls.key.exists() {
        return Err(format!("certificate present, but not private key file \"{}\"", tls.key.display()));
    }
    check_key_permissions(&tls.key)?;
    let key =
        PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| format!("could not load private key file \"{}\": {e}", tls.key.display()))?;
    Ok(Some((chain, key)))
}

/// libpq's verification on top of webpki: no checks without a root file,
/// the chain only for verify-ca (and require with a root file), chain and
/// host name for verify-full. Handshake signatures are always checked.
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    provider: Arc<CryptoProvider>,
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
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name, so a name error means the
        // chain is good.
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }))
                if !self.check_name =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in an error's chain (tokio-postgres wraps it
/// in an io::Error, whose `source` skips it, so io errors are opened too).
fn find_rustls<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(r);
            }
            cur = Some(inner);
            continue;
        }
        cur = e.source();
    }
    None
}

/// A sentence saying which TLS check failed, when the error is a TLS one.
pub fn explain(err: &(dyn std::error::Error + 'static), tls: &TlsSettings, host: &str) -> Option<String> {
    let roots = match &tls.root {
        RootCert::System => "the operating system's store (sslrootcert=system)".to_string(),
        RootCert::File(p) => format!("\"{}\"", p.display()),
    };
    let e = find_rustls(err)?;
    Some(match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                format!("server certificate verification failed: unknown CA (the certificate of {host} is not signed by a CA in {roots})")
            }
            CertificateError::NotValidForName => format!(
                "server certificate verification failed: name mismatch (the certificate is not valid for host name \"{host}\"; \
                 sslmode=verify-full checks it)"
            ),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "server certificate verification failed: name mismatch (the certificate is not valid for host name \"{host}\", \
                 it names {}; sslmode=verify-full checks it)",
                if presented.is_empty() {
                    "no host".to_string()
                } else {
                    presented.join(", ")
                }
            ),
            CertificateError::Expired => "server certificate verification failed: expired (the server's certificate has expired)".into(),
            CertificateError::ExpiredContext { not_after, .. } => format!(
                "server certificate verification failed: expired (the server's certificate expired on {})",
                utc_date(not_after.as_secs())
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "server certificate verification failed: the server's certificate is not valid yet".into()
            }
            other => format!("server certificate verification failed: {other}"),
        },
        rustls::Error::AlertReceived(alert) => {
            let hint = if tls.no_client_cert || !tls.cert.is_file() {
                format!(
                    "; it may require a client certificate, and none was sent{}",
                    if tls.cert_explicit {
                        format!(" (sslcert \"{}\" does not exist)", tls.cert.display())
                    } else {
                        String::new()
                    }
                )
            } else {
                format!("; it may not trust the client certificate \"{}\"", tls.cert.display())
            };
            format!("the server ended the TLS handshake ({alert:?}){hint}")
        }
        other => format!("TLS error: {other}"),
    })
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
fn utc_date(secs: u64) -> String {
    let (y, m, d) = crate::workspace::scaffold::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31 23:59:59 UTC");
    }

    #[test]
    fn explanations_name_the_failed_check() {
        let tls = super::super::settings::resolve(
            super::super::params::parse("sslmode=verify-full sslrootcert=/ca.pem").unwrap(),
            &super::super::settings::Env::from_pairs([("HOME", "/nonexistent")]),
            "strata",
        )
        .unwrap()
        .tls;
        let wrap = |e: rustls::Error| std::io::Error::other(e);
        let unknown = wrap(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer));
        assert!(explain(&unknown, &tls, "db").unwrap().contains("unknown CA"));
        let name = wrap(rustls::Error::InvalidCertificate(CertificateError::NotValidForName));
        assert!(explain(&name, &tls, "db").unwrap().contains("name mismatch"));
        let expired = wrap(rustls::Error::InvalidCertificate(CertificateError::Expired));
        assert!(explain(&expired, &tls, "db").unwrap().contains("expired"));
        assert!(explain(&std::io::Error::other("plain"), &tls, "db").is_none());
    }

    #[test]
    fn verify_modes_need_a_root_file() {
        let env = super::super::settings::Env::from_pairs([("HOME", "/nonexistent")]);
        let settings = |s: &str| {
            super::super::settings::resolve(super::super::params::parse(s).unwrap(), &env, "strata")
                .unwrap()
                .tls
        };
        let e = client_config(&settings("sslmode=verify-ca")).unwrap_err();
        assert!(e.contains("root certificate file") && e.contains("does not exist"), "{e}");
        assert!(client_config(&settings("sslmode=require")).is_ok());
    }
}
