//! Why a TLS connection failed, and which side refused: read from the TLS library's message.
//!
//! OpenSSL does not hand out the reason as a value through native-tls, only as text: the
//! verification result in parentheses (`certificate verify failed (hostname mismatch)`) when
//! fabric refused the broker's certificate, or the alert the broker sent (`tlsv1 alert unknown
//! ca`) when the broker refused fabric's. Those strings are stable across OpenSSL 1.1 and 3;
//! they are read here, once, and only the [`TlsFailure`] goes further.

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

    /// Reads a TLS library message. Fabric's own verification of the broker's certificate
    /// says `certificate verify failed (REASON)`; an alert from the broker says
    /// `... alert NAME`.
    pub(crate) fn classify(message: &str) -> TlsFailure {
        let text = message.to_ascii_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        if has(&["certificate verify failed"]) {
            if has(&["hostname mismatch", "ip address mismatch"]) {
                TlsFailure::HostnameMismatch
            } else if has(&["certificate has expired", "certificate is not yet valid"]) {
                TlsFailure::CertificateExpired
            } else if has(&[
                "unable to get local issuer certificate",
                "unable to get issuer certificate",
                "unable to verify the first certificate",
                "self-signed certificate",
                "self signed certificate",
            ]) {
                TlsFailure::UnknownCa
            } else {
                TlsFailure::ServerCertificateInvalid
            }
        } else if has(&["alert certificate required"]) {
            TlsFailure::ClientCertificateRequired
        } else if has(&[
            "alert unknown ca",
            "alert bad certificate",
            "alert certificate expired",
            "alert certificate unknown",
            "alert certificate revoked",
            "alert unsupported certificate",
            "alert access denied",
        ]) {
            TlsFailure::ClientCertificateRefused
        } else if has(&[
            "wrong version number",
            "packet length too long",
            "http request",
        ]) {
            TlsFailure::NotTls
        } else {
            TlsFailure::Other
        }
    }

    /// Whether an error met on a TLS connection came from TLS rather than plain I/O: after
    /// fabric's side of the handshake, TLS 1.3 delivers the broker's refusal of a client
    /// certificate as an alert on the first read, which surfaces as a read error.
    pub(crate) fn is_tls_message(message: &str) -> bool {
        let text = message.to_ascii_lowercase();
        text.contains("ssl routines") || text.contains(" alert ")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages as native-tls on OpenSSL 3 prints them.
    #[test]
    fn openssl_messages_are_classified() {
        let verify = "error:0A000086:SSL routines:tls_post_process_server_certificate:\
                      certificate verify failed:../ssl/statem/statem_clnt.c:1889:";
        let cases = [
            (
                format!("{verify} (unable to get local issuer certificate)"),
                TlsFailure::UnknownCa,
            ),
            (
                format!("{verify} (self-signed certificate in certificate chain)"),
                TlsFailure::UnknownCa,
            ),
            (
                format!("{verify} (hostname mismatch)"),
                TlsFailure::HostnameMismatch,
            ),
            (
                format!("{verify} (IP address mismatch)"),
                TlsFailure::HostnameMismatch,
            ),
            (
                format!("{verify} (certificate has expired)"),
                TlsFailure::CertificateExpired,
            ),
            (
                format!("{verify} (certificate revoked)"),
                TlsFailure::ServerCertificateInvalid,
            ),
            (
                "error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca".to_owned(),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                "error:0A000415:SSL routines:ssl3_read_bytes:sslv3 alert certificate expired"
                    .to_owned(),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                "error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required"
                    .to_owned(),
                TlsFailure::ClientCertificateRequired,
            ),
            (
                "error:0A00010B:SSL routines:ssl3_get_record:wrong version number".to_owned(),
                TlsFailure::NotTls,
            ),
            ("unexpected EOF".to_owned(), TlsFailure::Other),
        ];
        for (message, expected) in cases {
            assert_eq!(TlsFailure::classify(&message), expected, "{message}");
        }
    }

    #[test]
    fn the_side_that_refused_is_told() {
        assert!(TlsFailure::ClientCertificateRefused.refused_by_broker());
        assert!(!TlsFailure::UnknownCa.refused_by_broker());
    }
}
