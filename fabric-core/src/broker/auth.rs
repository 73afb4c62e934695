//! How fabric logs in to the broker, and how the broker says no.

use crate::error::Refusal;

/// How fabric logs in: RabbitMQ's `auth_mechanism` URL query parameter, or
/// [`FabricConfig::auth_mechanism`](crate::FabricConfig::auth_mechanism).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMechanism {
    /// The user name and password of the URL (`guest`/`guest` when it names none). The default.
    #[default]
    Plain,
    /// No password: the broker takes the user name from the client certificate that fabric
    /// presents over `amqps://` (RabbitMQ's `rabbitmq_auth_mechanism_ssl` plugin, with
    /// `auth_mechanisms.N = EXTERNAL` and `ssl_cert_login_from = common_name` or
    /// `distinguished_name` in `rabbitmq.conf`). Needs a client certificate (`certfile` and
    /// `keyfile`, or [`TlsConfig::client_identity_pem`](crate::TlsConfig::client_identity_pem)).
    External,
}

impl AuthMechanism {
    /// The value of the `auth_mechanism` query parameter, as RabbitMQ's URI spec spells it.
    pub(crate) fn from_query(value: &str) -> Option<AuthMechanism> {
        match value.to_ascii_lowercase().as_str() {
            "plain" => Some(AuthMechanism::Plain),
            "external" => Some(AuthMechanism::External),
            _ => None,
        }
    }

    /// The SASL name the broker announces and expects.
    pub(crate) fn sasl_name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::External => "EXTERNAL",
        }
    }
}

/// What a connection.close from the broker during the handshake means, by its reply code:
/// 403 ACCESS_REFUSED is a refused login, 530 NOT_ALLOWED a refused virtual host.
pub(crate) fn refusal_of(code: u16) -> Option<Refusal> {
    match code {
        403 => Some(Refusal::Login),
        530 => Some(Refusal::VirtualHost),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_read_as_rabbitmq_spells_them() {
        assert_eq!(
            AuthMechanism::from_query("external"),
            Some(AuthMechanism::External)
        );
        assert_eq!(
            AuthMechanism::from_query("PLAIN"),
            Some(AuthMechanism::Plain)
        );
        assert_eq!(AuthMechanism::from_query("amqplain"), None);
    }

    #[test]
    fn close_codes_tell_login_from_vhost() {
        assert_eq!(refusal_of(403), Some(Refusal::Login));
        assert_eq!(refusal_of(530), Some(Refusal::VirtualHost));
        assert_eq!(refusal_of(320), None);
    }
}
