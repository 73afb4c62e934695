//! Why a TLS connection failed, and which side refused: read from the TLS library's message.
//!
//! OpenSSL does not hand out the reason as a value through native-tls, only as text: the
//! verification result in parentheses (`certificate verify failed (hostname mismatch)`) when
//! fabric refused the broker's certificate, or the alert the broker sent (`tlsv1 alert unknown
//! ca`) when the broker refused fabric's. Those strings are stable across OpenSSL 1.1 and 3;
//! they are read here, once, and only the [`TlsFailure`] goes further.

use crate::error::TlsFailure;

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
            assert_eq!(classify(&message), expected, "{message}");
        }
    }

    #[test]
    fn the_side_that_refused_is_told() {
        assert!(TlsFailure::ClientCertificateRefused.refused_by_broker());
        assert!(!TlsFailure::UnknownCa.refused_by_broker());
    }
}
