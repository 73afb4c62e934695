//! The broker connection: URLs, the socket, TLS and the login, the declarations fabric makes,
//! and the two kinds of channel-owning threads every feature reuses (a consumer and a
//! confirming publisher).

pub(crate) mod auth;
pub(crate) mod connect;
pub(crate) mod consumer;
mod handshake_tap;
pub(crate) mod link;
pub(crate) mod publisher;
pub(crate) mod tls;
pub(crate) mod tls_failure;
#[cfg(feature = "tls")]
mod tls_socket;
pub(crate) mod topology;
pub(crate) mod url;
