//! The listener's table of participants, the watches on it, and the reaper that ends the
//! participants that fell silent.
//!
//! The table is written by the listener thread (`fabric-registry`) and the reaper thread
//! (`fabric-registry-ttl`), read by any thread that lists; one mutex guards it, held only to
//! update the table and hand events to the watches' unbounded channels (which never block).
//! Listing does not depend on the reaper being on time: it checks each entry's age itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{at, bounded, never, select, unbounded, Receiver, Sender};
use parking_lot::Mutex;

use super::wire::{Heard, Kind};
use super::{ServiceEvent, ServiceFilter, ServiceInfo};
use crate::address::ServiceAddress;
use crate::error::{Error, Result};
use crate::thread::StoppableThread;

/// One participant: its address and, for fabric peers, its instance token.
type Key = (ServiceAddress, Option<String>);

/// The participants heard within the TTL, and who watches them.
pub(crate) struct Directory {
    ttl: Duration,
    state: Mutex<State>,
    /// Wakes the reaper when a participant appears: with none listed it waits for no time.
    wake_reaper: Sender<()>,
}

#[derive(Default)]
struct State {
    services: HashMap<Key, ServiceInfo>,
    watchers: Vec<Watcher>,
    next_watcher: u64,
    closed: bool,
}

struct Watcher {
    id: u64,
    filter: ServiceFilter,
    events: Sender<ServiceEvent>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// When `info` falls silent; `None` for a TTL too long to count.
fn deadline(info: &ServiceInfo, ttl: Duration) -> Option<Instant> {
    info.last_heard.checked_add(ttl)
}

impl State {
    /// Hands `event` to every watch it matches, forgetting watches whose receiver is gone.
    fn notify(&mut self, event: ServiceEvent) {
        let address = &event.info().address;
        self.watchers
            .retain(|w| !w.filter.matches(address) || w.events.send(event.clone()).is_ok());
    }

    /// Ends the participants not heard within `ttl` before `now`, oldest first, and returns
    /// when the next one will fall silent.
    fn expire(&mut self, ttl: Duration, now: Instant) -> Option<Instant> {
        let mut silent: Vec<Key> = self
            .services
            .iter()
            .filter(|(_, info)| deadline(info, ttl).is_some_and(|end| end <= now))
            .map(|(key, _)| key.clone())
            .collect();
        // Oldest first; by name among those heard at once, so the order never varies.
        silent.sort_by_key(|key| (self.services[key].last_heard, key.0.fqn(), key.1.clone()));
        for key in silent {
            if let Some(info) = self.services.remove(&key) {
                self.notify(ServiceEvent::Silent(info));
            }
        }
        self.services
            .values()
            .filter_map(|info| deadline(info, ttl))
            .min()
    }

    /// The participants that pass `filter` and were heard within `ttl`, by name.
    fn live(&self, filter: &ServiceFilter, ttl: Duration, now: Instant) -> Vec<ServiceInfo> {
        let mut found: Vec<ServiceInfo> = self
            .services
            .values()
            .filter(|info| filter.matches(&info.address))
            .filter(|info| deadline(info, ttl).is_none_or(|end| end > now))
            .cloned()
            .collect();
        found.sort_by(|a, b| (a.address.fqn(), &a.instance).cmp(&(b.address.fqn(), &b.instance)));
        found
    }
}

impl Directory {
    /// An empty directory, and the receiver the reaper waits on.
    pub(crate) fn new(ttl: Duration) -> (Arc<Directory>, Receiver<()>) {
        let (wake_reaper, woken) = bounded(1);
        let directory = Directory {
            ttl,
            state: Mutex::new(State::default()),
            wake_reaper,
        };
        (Arc::new(directory), woken)
    }

    /// Records a keep-alive or goodbye and tells the watches what changed.
    pub(crate) fn heard(&self, heard: Heard) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        // A participant whose TTL ran out before the reaper saw it is silent first, so its
        // next keep-alive makes it appear again, in that order.
        state.expire(self.ttl, heard.info.last_heard);
        let key = (heard.info.address.clone(), heard.info.instance.clone());
        match heard.kind {
            Kind::KeepAlive | Kind::Update => {
                match state.services.insert(key, heard.info.clone()) {
                    None => {
                        state.notify(ServiceEvent::Appeared(heard.info));
                        let _ = self.wake_reaper.try_send(());
                    }
                    Some(before) if !before.same_content(&heard.info) => {
                        state.notify(ServiceEvent::Updated(heard.info));
                    }
                    Some(_) => {}
                }
            }
            // A goodbye from a participant not listed (already silent, or never heard) is
            // news to nobody.
            Kind::Goodbye => {
                if state.services.remove(&key).is_some() {
                    state.notify(ServiceEvent::Left(heard.info));
                }
            }
        }
    }

    /// Ends the participants whose TTL ran out; returns when the next one will.
    fn expire(&self) -> Option<Instant> {
        self.state.lock().expire(self.ttl, Instant::now())
    }

    /// The participants heard within the TTL that pass `filter`, sorted by name.
    pub(crate) fn list(&self, filter: &ServiceFilter) -> Result<Vec<ServiceInfo>> {
        let state = self.state.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        Ok(state.live(filter, self.ttl, Instant::now()))
    }

    /// Starts a watch: the receiver gets `Appeared` for each participant listed now, then
    /// every event that passes `filter`. The id ends it with [`unwatch`](Self::unwatch).
    pub(crate) fn watch(&self, filter: ServiceFilter) -> Result<(u64, Receiver<ServiceEvent>)> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        let (events, receiver) = unbounded();
        for info in state.live(&filter, self.ttl, Instant::now()) {
            let _ = events.send(ServiceEvent::Appeared(info));
        }
        let id = state.next_watcher;
        state.next_watcher += 1;
        state.watchers.push(Watcher { id, filter, events });
        Ok((id, receiver))
    }

    /// Ends a watch: its receiver disconnects once it has taken the events already sent.
    pub(crate) fn unwatch(&self, id: u64) {
        self.state.lock().watchers.retain(|w| w.id != id);
    }

    /// Forgets everyone and ends every watch; later lists fail with [`Error::Closed`].
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.watchers.clear();
        state.services.clear();
    }
}

/// The thread that reports participants silent when their TTL runs out. It sleeps until the
/// next deadline (or, with nobody listed, until someone appears), never on a polling tick.
#[derive(Debug)]
pub(crate) struct Reaper {
    thread: StoppableThread,
}

impl Reaper {
    /// Starts `fabric-registry-ttl` on `directory`; `woken` is from [`Directory::new`].
    pub(crate) fn start(directory: Arc<Directory>, woken: Receiver<()>) -> Result<Reaper> {
        let thread = StoppableThread::spawn("fabric-registry-ttl", move |stopped| loop {
            let timer = directory.expire().map_or_else(never, at);
            select! {
                recv(stopped) -> _ => return,
                recv(woken) -> _ => {}
                recv(timer) -> _ => {}
            }
        })?;
        Ok(Reaper { thread })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(&mut self) {
        self.thread.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(kind: Kind, id: &str, instance: Option<&str>, at: Instant) -> Heard {
        let info = ServiceInfo {
            address: ServiceAddress::new("d", "t", id).unwrap(),
            instance: instance.map(str::to_owned),
            version: None,
            host: None,
            pid: None,
            started_at: None,
            methods: None,
            in_flight: None,
            workers: None,
            contract: None,
            last_heard: at,
            raw: serde_json::Value::Null,
        };
        Heard { kind, info }
    }

    fn names(events: &Receiver<ServiceEvent>) -> Vec<String> {
        events
            .try_iter()
            .map(|e| {
                let kind = match &e {
                    ServiceEvent::Appeared(_) => "appeared",
                    ServiceEvent::Updated(_) => "updated",
                    ServiceEvent::Left(_) => "left",
                    ServiceEvent::Silent(_) => "silent",
                };
                format!("{kind} {}", e.info().address.service_id())
            })
            .collect()
    }

    #[test]
    fn events_follow_keep_alives_goodbyes_and_the_ttl() {
        let ttl = Duration::from_secs(5);
        let (directory, _woken) = Directory::new(ttl);
        let (_, all) = directory.watch(ServiceFilter::any()).unwrap();
        let (_, only_b) = directory
            .watch(ServiceFilter::any().service_id("b"))
            .unwrap();
        let start = Instant::now();
        directory.heard(heard(Kind::KeepAlive, "a", Some("1"), start));
        directory.heard(heard(Kind::KeepAlive, "a", Some("2"), start));
        directory.heard(heard(Kind::KeepAlive, "b", None, start));
        directory.heard(heard(Kind::KeepAlive, "a", Some("1"), start)); // nothing new
        let mut changed = heard(Kind::KeepAlive, "b", None, start);
        changed.info.in_flight = Some(3);
        directory.heard(changed);
        directory.heard(heard(Kind::Goodbye, "a", Some("2"), start));
        directory.heard(heard(Kind::Goodbye, "a", Some("9"), start)); // never heard
        assert_eq!(
            names(&all),
            [
                "appeared a",
                "appeared a",
                "appeared b",
                "updated b",
                "left a"
            ]
        );
        assert_eq!(names(&only_b), ["appeared b", "updated b"]);
        assert_eq!(directory.list(&ServiceFilter::any()).unwrap().len(), 2);

        // Later than the TTL: `a` is silent before `b`'s next keep-alive counts.
        directory.heard(heard(Kind::KeepAlive, "b", None, start + ttl * 2));
        assert_eq!(names(&all), ["silent a", "silent b", "appeared b"]);

        let (_, late) = directory.watch(ServiceFilter::any()).unwrap();
        assert_eq!(names(&late), ["appeared b"]);
        directory.close();
        assert!(late.recv().is_err(), "a closed directory ends its watches");
        assert_eq!(directory.list(&ServiceFilter::any()), Err(Error::Closed));
    }

    #[test]
    fn the_reaper_reports_silence_when_the_ttl_runs_out() {
        let ttl = Duration::from_millis(100);
        let (directory, woken) = Directory::new(ttl);
        let mut reaper = Reaper::start(Arc::clone(&directory), woken).unwrap();
        let (_, events) = directory.watch(ServiceFilter::any()).unwrap();
        let sent = Instant::now();
        directory.heard(heard(Kind::KeepAlive, "a", None, sent));
        assert!(matches!(events.recv().unwrap(), ServiceEvent::Appeared(_)));
        let silent = events.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(silent, ServiceEvent::Silent(_)), "{silent:?}");
        assert!(sent.elapsed() >= ttl);
        assert!(directory.list(&ServiceFilter::any()).unwrap().is_empty());
        reaper.stop();
    }
}
