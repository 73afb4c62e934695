//! The reply session callers use now: set by the reply thread, waited for by callers while
//! there is none (between connections).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::session::ReplySession;
use crate::broker::link::Link;
use crate::broker::state::ConnectionState;
use crate::error::{Error, Result};

/// The live session, if any, and whether one can still come.
pub(super) struct Slot {
    link: Arc<Link>,
    state: Mutex<State>,
    /// Notified whenever the state changes, for calls waiting for a session.
    changed: Condvar,
}

struct State {
    /// The live session; `None` between sessions (while reconnecting).
    session: Option<Arc<ReplySession>>,
    /// Set by [`close`](Slot::close): no session will come any more.
    closed: bool,
}

impl Slot {
    pub(super) fn new(link: Arc<Link>) -> Slot {
        Slot {
            link,
            state: Mutex::new(State {
                session: None,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Makes `session` the one calls are sent in; `false` (and nothing changes) once closed.
    pub(super) fn open(&self, session: &Arc<ReplySession>) -> bool {
        let mut state = self.state.lock();
        if state.closed {
            return false;
        }
        state.session = Some(Arc::clone(session));
        drop(state);
        self.changed.notify_all();
        true
    }

    /// Takes `session` out, if it is the one in: no new call is sent in it.
    pub(super) fn retire(&self, session: &Arc<ReplySession>) {
        let mut state = self.state.lock();
        if state
            .session
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            state.session = None;
        }
    }

    /// No session will come any more: waiting calls fail with [`Error::Closed`]. Returns the
    /// session that was in, for the caller to end.
    pub(super) fn close(&self) -> Option<Arc<ReplySession>> {
        let session = {
            let mut state = self.state.lock();
            state.closed = true;
            state.session.take()
        };
        self.changed.notify_all();
        session
    }

    pub(super) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// The session in now, for a look at it (no wait).
    pub(super) fn current(&self) -> Option<Arc<ReplySession>> {
        self.state.lock().session.clone()
    }

    /// A live session to send a call in, other than `unusable` (one the call could not be
    /// sent in), waiting for one until `deadline`; `timeout` is what the call waits in all,
    /// for the error.
    pub(super) fn live(
        &self,
        deadline: Instant,
        unusable: Option<&Arc<ReplySession>>,
        timeout: Duration,
    ) -> Result<Arc<ReplySession>> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return Err(Error::Closed);
            }
            if let Some(session) = &state.session {
                let refused = unusable.is_some_and(|u| Arc::ptr_eq(u, session));
                if !refused && !session.is_ended() {
                    return Ok(Arc::clone(session));
                }
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                if state.closed {
                    return Err(Error::Closed);
                }
                let reason = match self.link.state() {
                    ConnectionState::Closed => return Err(Error::Closed),
                    // Connected, but the reply queue is not set up again yet.
                    state @ ConnectionState::Connected { .. } => {
                        format!("{state}, but its reply queue is not set up yet")
                    }
                    state => state.to_string(),
                };
                return Err(Error::Unavailable {
                    reason,
                    waited: timeout,
                });
            }
        }
    }
}
