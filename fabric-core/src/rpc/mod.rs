//! Remote procedure calls: the client, the server and the messages between them.

mod arguments;
mod caller;
mod client;
mod context;
mod dispatch;
mod protocol;
mod reply;
mod retry;
mod server;

pub use arguments::decode_args;
pub(crate) use caller::Caller;
pub use client::{PendingCall, RpcClient};
pub use context::CallContext;
pub use dispatch::{Dispatch, DispatchError, Wire};
pub use reply::Reply;
pub use retry::RetryPolicy;
pub(crate) use server::ServerLoad;
pub use server::{Server, ServerBuilder};
