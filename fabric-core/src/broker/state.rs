//! Where the connection to the broker stands, as users see it.

use std::fmt;

/// Where a [`Fabric`](crate::Fabric)'s connection to the broker stands.
///
/// Read it with [`Fabric::connection_state`](crate::Fabric::connection_state), or be told of
/// every change with [`Fabric::on_connection_change`](crate::Fabric::on_connection_change).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected to the broker at `url` (password masked). `generation` counts connections:
    /// 1 for the first, one more after each reconnection.
    Connected {
        /// The broker URL, password masked.
        url: String,
        /// Which connection this is: 1, then one more per reconnection.
        generation: u64,
    },
    /// The connection broke and fabric is reconnecting. Calls in flight at the break have
    /// failed with [`Error::CallInterrupted`](crate::Error::CallInterrupted); new calls wait for the connection, up to their
    /// timeout.
    Reconnecting {
        /// Why the last connection ended.
        reason: String,
        /// Failed attempts since the connection broke.
        attempts: u32,
    },
    /// The broker blocked publishing on the connection (its memory or disk alarm); calls and
    /// publishes wait until it unblocks.
    Blocked {
        /// The broker's reason.
        reason: String,
    },
    /// Closed by [`Fabric::close`](crate::Fabric::close) or the drop of the last handle.
    Closed,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connected { url, generation } => {
                write!(f, "connected to {url} (connection {generation})")
            }
            ConnectionState::Reconnecting { reason, attempts } => {
                write!(
                    f,
                    "reconnecting after {reason} ({attempts} failed attempts)"
                )
            }
            ConnectionState::Blocked { reason } => write!(f, "blocked by the broker: {reason}"),
            ConnectionState::Closed => f.write_str("closed"),
        }
    }
}
