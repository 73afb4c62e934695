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

impl RemoteLogger {
    /// Makes this logger the global logger of the `log` crate, and sets the global maximum
    /// level to [`max_level`](Self::max_level). Fails if a global logger is already
    /// installed (only one can be, for the life of the process).
    pub fn try_install(&self) -> Result<(), log::SetLoggerError> {
        log::set_logger(&GLOBAL_LOGGER)?;
        // Only the first successful `set_logger` gets here, so the slot is empty.
        let _ = GLOBAL.set(self.clone());
        log::set_max_level(self.max_level());
        Ok(())
    }
}
