//! A hold on whatever keeps the connection open: what a user's handle carries.

use std::sync::Arc;

/// Keeps a fabric, and so its connection, open while a handle made from it lives: a user's
/// subscription, client or server holds one. Threads the fabric owns itself (the registry's)
/// hold none, or the fabric could never close by being dropped.
#[derive(Clone, Default)]
pub(crate) struct Hold(Option<Arc<dyn Send + Sync>>);

impl Hold {
    /// A hold on `owner`, whatever keeps the connection open while it lives.
    pub(crate) fn new(owner: Arc<dyn Send + Sync>) -> Hold {
        Hold(Some(owner))
    }

    /// No hold: for what the fabric owns itself.
    pub(crate) fn none() -> Hold {
        Hold(None)
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Hold"
        } else {
            "Hold(none)"
        })
    }
}
