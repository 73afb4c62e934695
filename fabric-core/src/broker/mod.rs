//! The broker layer: the connection and its URLs, the declarations fabric makes, and the
//! pieces every feature builds on (sessions, a consumer thread, the confirming publisher).
//! Nothing here knows the features or the [`Fabric`](crate::Fabric) handle.

pub(crate) mod auth;
pub(crate) mod connect;
pub(crate) mod consumer;
mod handshake_tap;
pub(crate) mod hold;
pub(crate) mod link;
pub(crate) mod publisher;
pub(crate) mod sessions;
pub(crate) mod state;
pub(crate) mod tls;
pub(crate) mod tls_failure;
#[cfg(feature = "tls")]
mod tls_socket;
pub(crate) mod topology;
pub(crate) mod url;
