//! Remote procedure calls: the client, the server and the messages between them.

mod caller;
mod client;
mod context;
mod dispatch;
mod protocol;
mod retry;
mod server;

pub(crate) use caller::Caller;
pub use client::{PendingCall, RpcClient};
pub use context::CallContext;
pub use dispatch::{Dispatch, Wire};
pub use retry::RetryPolicy;
pub(crate) use server::ServerLoad;
pub use server::{Server, ServerBuilder};
