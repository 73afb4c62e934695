//! Remote procedure calls: the client, the server and the messages between them.

mod answer;
mod arg;
mod arguments;
mod caller;
mod client;
mod context;
mod dispatch;
mod local;
mod protocol;
mod reply;
mod retry;
mod server;

pub use arg::Arg;
pub use arguments::decode_args;
pub(crate) use caller::Caller;
pub use client::{PendingCall, RpcClient};
pub use context::CallContext;
pub use dispatch::{Dispatch, Wire};
pub use local::{Fault, Faults};
pub use reply::{DispatchError, Reply};
pub use retry::RetryPolicy;
pub(crate) use server::Workers;
pub use server::{Server, ServerBuilder};
