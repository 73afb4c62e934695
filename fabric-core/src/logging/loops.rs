//! What keeps shipping a record from causing more records: some targets and threads are never
//! shipped, and a record logged from inside the logger is ignored.

use std::cell::Cell;

/// Targets never shipped: fabric and the AMQP client it ships with (and that client's I/O
/// library), whose records a shipment itself can cause.
pub(super) const FABRIC_TARGETS: [&str; 4] = ["fabric_core", "amiquip", "mio", "mio_extras"];
/// The name of amiquip's I/O thread; nothing logged on it is shipped.
const AMIQUIP_IO_THREAD: &str = "amiquip-io";

thread_local! {
    /// Whether records logged on this thread may be shipped: not on the shipper thread nor
    /// on amiquip's I/O thread, where shipping one record would log more. Worked out once
    /// per thread.
    static MAY_SHIP: Cell<Option<bool>> = const { Cell::new(None) };
    /// Set while this thread is inside `RemoteLogger::log`: a record logged from there (by
    /// a wrapped logger, say) is ignored rather than risk a loop.
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
}

/// Whether a record logged on this thread may be shipped.
pub(super) fn may_ship_here() -> bool {
    MAY_SHIP
        .try_with(|may| match may.get() {
            Some(known) => known,
            None => {
                let known = std::thread::current().name() != Some(AMIQUIP_IO_THREAD);
                may.set(Some(known));
                known
            }
        })
        .unwrap_or(false)
}

/// Nothing logged on this thread (the shipper's own) is shipped.
pub(super) fn never_ship_here() {
    let _ = MAY_SHIP.try_with(|may| may.set(Some(false)));
}

/// Whether `target` is the module `prefix` or inside it.
pub(super) fn is_within(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// Marks this thread as inside `log` until dropped.
pub(super) struct InLog;

impl InLog {
    /// `None` if this thread already is inside `log`.
    pub(super) fn enter() -> Option<InLog> {
        let entered = IN_LOG
            .try_with(|inside| !inside.replace(true))
            .unwrap_or(false);
        entered.then_some(InLog)
    }
}

impl Drop for InLog {
    fn drop(&mut self) {
        let _ = IN_LOG.try_with(|inside| inside.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_excluded_by_module() {
        assert!(is_within("fabric_core", "fabric_core"));
        assert!(is_within("fabric_core::broker::consumer", "fabric_core"));
        assert!(!is_within("fabric_core_extra", "fabric_core"));
        assert!(!is_within("my_app", "fabric_core"));
    }

    #[test]
    fn a_nested_log_call_is_refused() {
        let outer = InLog::enter();
        assert!(outer.is_some());
        assert!(InLog::enter().is_none());
        drop(outer);
        assert!(InLog::enter().is_some());
    }
}
