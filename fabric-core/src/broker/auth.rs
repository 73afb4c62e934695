//! How fabric logs in to the broker, and how the broker says no.

use std::fmt;

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

/// What the broker refused, in an [`Error::AccessRefused`](crate::Error::AccessRefused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The login: a wrong user name or password, an unknown user, or with EXTERNAL no user
    /// named after the client certificate. RabbitMQ's log has the details; the broker tells
    /// the client no more than that.
    Login,
    /// The virtual host: the user may not use it (no permissions set there), or it does not
    /// exist. The message says which.
    VirtualHost,
    /// The login mechanism: the broker does not offer it (EXTERNAL needs the
    /// `rabbitmq_auth_mechanism_ssl` plugin and `auth_mechanisms` in `rabbitmq.conf`).
    Mechanism,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Login => {
                "the login (wrong user name or password, or with EXTERNAL no user for the client \
                 certificate)"
            }
            Refusal::VirtualHost => {
                "the virtual host (the user may not use it, or it does not exist)"
            }
            Refusal::Mechanism => "the login mechanism",
        })
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
