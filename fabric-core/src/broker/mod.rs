//! The broker connection: URLs, the socket, the declarations fabric makes, and the two kinds
//! of channel-owning threads every feature reuses (a consumer and a confirming publisher).

pub(crate) mod connect;
pub(crate) mod consumer;
pub(crate) mod link;
pub(crate) mod publisher;
pub(crate) mod topology;
pub(crate) mod url;
