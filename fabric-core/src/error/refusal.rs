//! What the broker refused when it turned a connection away.

use std::fmt;

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
