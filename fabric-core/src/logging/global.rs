//! The global logger slot: `log` takes a `&'static dyn Log`, and this one points it at the
//! installed [`RemoteLogger`].

use std::sync::OnceLock;

use log::{Log, Metadata, Record};

use super::logger::RemoteLogger;

static GLOBAL: OnceLock<RemoteLogger> = OnceLock::new();

struct GlobalLogger;

static GLOBAL_LOGGER: GlobalLogger = GlobalLogger;

impl Log for GlobalLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        GLOBAL.get().is_some_and(|logger| logger.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        if let Some(logger) = GLOBAL.get() {
            logger.log(record);
        }
    }

    fn flush(&self) {
        if let Some(logger) = GLOBAL.get() {
            logger.flush();
        }
    }
}

/// Makes `logger` the global logger of the `log` crate; fails if one is installed already
/// (only one can be, for the life of the process).
pub(super) fn install(logger: RemoteLogger) -> Result<(), log::SetLoggerError> {
    log::set_logger(&GLOBAL_LOGGER)?;
    // Only the first successful `set_logger` gets here, so the slot is empty.
    let _ = GLOBAL.set(logger);
    Ok(())
}
