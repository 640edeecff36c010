//! TLS for the checks: the client configuration (the system's roots, or
//! any certificate for `insecure` and for reading an expiry), the name a
//! server is asked for, a certificate's remaining days, and TLS failures
//! in plain words.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::net::{dial, left, timed_out};
use super::plain;
use crate::policy::Certificate;

/// The days before the certificate `cert` names expires (negative: since
/// it expired), read from the leaf certificate the port presents. The
/// chain is not judged here: expiry is the question.
pub(super) fn expiry(cert: &Certificate, deadline: Instant) -> Result<i64, String> {
    let mut tcp = dial(&cert.host, cert.port, deadline, cert.timeout)?;
    let name = server_name(&cert.name, &cert.host)?;
    let mut conn =
        rustls::ClientConnection::new(tls_config(false), name).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        tcp.set_read_timeout(Some(left(deadline, cert.timeout)?))
            .map_err(|e| plain(&e))?;
        conn.complete_io(&mut tcp)
            .map_err(|e| timed_out(&e, cert.timeout).unwrap_or_else(|| tls_error(&e)))?;
    }
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate presented")?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("unreadable: {e}"))?;
    let not_after = parsed.validity().not_after.timestamp();
    Ok((not_after - crate::clock::real_ms() as i64 / 1000).div_euclid(86_400))
}

/// A certificate with `days` left, `want` wanted: whether that is enough,
/// and in words.
pub(super) fn lifetime(days: i64, want: u32) -> (bool, String) {
    let left = match days {
        d if d < 0 => return (false, "has expired".to_string()),
        0 => "expires within a day".to_string(),
        1 => "expires in 1 day".to_string(),
        d => format!("expires in {d} days"),
    };
    if days >= i64::from(want) {
        (true, left)
    } else {
        (false, format!("{left}, before the {want} days wanted"))
    }
}

/// The TLS name to present: a host name, or an address.
pub(super) fn server_name(header: &str, host: &str) -> Result<ServerName<'static>, String> {
    // The Host header may carry a port; IPv6 addresses are bracketed.
    let name = match header.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => header,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_string())
        .or_else(|_| ServerName::try_from(host.to_string()))
        .map_err(|_| format!("`{name}` is not a name TLS can present"))
}

/// What went wrong in a TLS exchange, in words (rustls's own names are
/// for programmers: `UnknownIssuer`, `CaUsedAsEndEntity`).
pub(super) fn tls_error(e: &std::io::Error) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return plain(e);
    };
    let untrusted = "certificate not trusted (self-signed, or from an authority this host does not trust; `insecure` accepts it)";
    match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer | C::Other(_) => untrusted.to_string(),
            C::Expired | C::ExpiredContext { .. } => "certificate expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "certificate not valid yet".to_string()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate not for this name (`host` sets the name)".to_string()
            }
            C::Revoked => "certificate revoked".to_string(),
            other => format!("bad certificate ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// `connection refused`, without Rust's ` (os error 111)`.
/// The client configuration, made once per pass: the system's trusted
/// roots (`verify`), or any certificate (for `insecure` and for reading a
/// certificate's expiry), the handshake itself still checked.
pub(super) fn tls_config(verify: bool) -> Arc<rustls::ClientConfig> {
    static VERIFIED: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    static ANY: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let provider = || Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
    };
    if verify {
        VERIFIED
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                Arc::new(
                    builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            })
            .clone()
    } else {
        ANY.get_or_init(|| {
            Arc::new(
                builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                    .with_no_client_auth(),
            )
        })
        .clone()
    }
}

/// Accepts whatever certificate the peer shows, but checks that the peer
/// holds its key (the handshake's signatures).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_table() {
        for (days, want, enough, said) in [
            (30, 14, true, "expires in 30 days"),
            (14, 14, true, "expires in 14 days"),
            (1, 1, true, "expires in 1 day"),
            (0, 0, true, "expires within a day"),
            (
                13,
                14,
                false,
                "expires in 13 days, before the 14 days wanted",
            ),
            (1, 14, false, "expires in 1 day, before the 14 days wanted"),
            (
                0,
                14,
                false,
                "expires within a day, before the 14 days wanted",
            ),
            (-3, 14, false, "has expired"),
            (-3, 0, false, "has expired"),
        ] {
            assert_eq!(lifetime(days, want), (enough, said.to_string()), "{days}");
        }
    }

    #[test]
    fn server_name_table() {
        for (header, host, want) in [
            ("example.org", "1.2.3.4", Some("example.org")),
            ("example.org:8443", "1.2.3.4", Some("example.org")),
            ("127.0.0.1:8443", "127.0.0.1", Some("127.0.0.1")),
            ("[::1]:8443", "::1", Some("::1")),
        ] {
            let got = server_name(header, host).ok().map(|n| match n {
                ServerName::DnsName(d) => d.as_ref().to_string(),
                ServerName::IpAddress(ip) => std::net::IpAddr::from(ip).to_string(),
                _ => String::new(),
            });
            assert_eq!(got.as_deref(), want, "{header}");
        }
    }
}
