//! What went wrong in a TLS connection to the broker, and which side refused.

use std::fmt;

/// What went wrong in a TLS connection to the broker, in an [`Error::Tls`](crate::Error::Tls).
///
/// The first four are fabric refusing the broker's certificate; the two `ClientCertificate`
/// kinds are the broker refusing fabric's ([`refused_by_broker`](Self::refused_by_broker)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's certificate is not signed by a CA fabric trusts: give the broker's CA with
    /// `cacertfile` (or [`TlsConfig::ca_certificates_pem`](crate::TlsConfig::ca_certificates_pem)).
    UnknownCa,
    /// The broker's certificate does not name the host in the URL (or the
    /// `server_name_indication` given instead).
    HostnameMismatch,
    /// The broker's certificate has expired or is not valid yet.
    CertificateExpired,
    /// fabric refused the broker's certificate for another reason (revoked, wrong purpose, ...).
    ServerCertificateInvalid,
    /// The broker refused fabric's client certificate: signed by a CA it does not trust,
    /// expired, or otherwise bad.
    ClientCertificateRefused,
    /// The broker requires a client certificate and none was given (`certfile` and `keyfile`).
    ClientCertificateRequired,
    /// The port does not speak TLS: most likely a plain AMQP port (5672) under `amqps://`.
    NotTls,
    /// Anything else: no common protocol version or cipher, a connection cut mid-handshake,
    /// a handshake that timed out.
    Other,
}

impl TlsFailure {
    /// Whether the broker refused (fabric's client certificate), rather than fabric (the
    /// broker's certificate) or neither.
    pub fn refused_by_broker(self) -> bool {
        matches!(
            self,
            TlsFailure::ClientCertificateRefused | TlsFailure::ClientCertificateRequired
        )
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UnknownCa => {
                "fabric refused the broker's certificate: it is not signed by a trusted CA \
                 (give the broker's CA with cacertfile)"
            }
            TlsFailure::HostnameMismatch => {
                "fabric refused the broker's certificate: it does not name this host \
                 (connect by the name in the certificate, or set server_name_indication)"
            }
            TlsFailure::CertificateExpired => {
                "fabric refused the broker's certificate: it has expired or is not valid yet"
            }
            TlsFailure::ServerCertificateInvalid => "fabric refused the broker's certificate",
            TlsFailure::ClientCertificateRefused => {
                "the broker refused fabric's client certificate (not signed by a CA the \
                 broker trusts, expired, or otherwise bad)"
            }
            TlsFailure::ClientCertificateRequired => {
                "the broker requires a client certificate (give certfile and keyfile)"
            }
            TlsFailure::NotTls => {
                "the broker's port does not speak TLS (a plain AMQP port? amqps:// needs the \
                 broker's TLS port, 5671 by default)"
            }
            TlsFailure::Other => "the TLS handshake failed",
        })
    }
}
