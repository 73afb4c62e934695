//! Unique names for things fabric creates: queues, instances, correlation-id prefixes.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// 16 hex digits unique to this call, across processes and runs.
pub(crate) fn unique_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS; the pid, a counter and the time guard against reuse.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    if let Ok(now) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    format!("{:016x}", hasher.finish())
}

/// 64 random bits: a hasher seeded by the OS (once per thread), fed a counter, so no two
/// calls hash the same input.
pub(crate) fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SEED: RandomState = RandomState::new();
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    SEED.with(|seed| {
        let mut hasher = seed.build_hasher();
        hasher.write_u64(n);
        hasher.finish()
    })
}

/// A random duration from zero up to `max`, to spread out retries that would otherwise
/// happen in step.
pub(crate) fn jitter(max: Duration) -> Duration {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    let fraction = (hasher.finish() % 1_000) as u32;
    max * fraction / 1_000
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_differ() {
        let a = super::unique_token();
        assert_eq!(a.len(), 16);
        assert_ne!(a, super::unique_token());
    }
}
