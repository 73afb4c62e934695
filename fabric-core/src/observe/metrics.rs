//! The `metrics` feature: what [`observe`](super) sees, recorded through the `metrics` facade.
//! Every name, label and unit is in the crate docs' "Metrics" table; this file is the only
//! place that names them.
//!
//! With no recorder installed the facade's no-op recorder takes every record: what remains is
//! building the labels (two shared strings per call) and reading the clock.

use std::sync::{Arc, Once};
use std::time::Instant;

use ::metrics::{Label, SharedString, Unit};

use crate::address::ServiceAddress;

/// The names of one side's call metrics.
#[derive(Debug)]
struct Side {
    started: &'static str,
    finished: &'static str,
    duration: &'static str,
    in_flight: &'static str,
    /// Whose view, for the help texts: "client" or "server".
    who: &'static str,
}

static CLIENT: Side = Side {
    started: "fabric_client_calls_started_total",
    finished: "fabric_client_calls_finished_total",
    duration: "fabric_client_call_duration_seconds",
    in_flight: "fabric_client_calls_in_flight",
    who: "client",
};

static SERVER: Side = Side {
    started: "fabric_server_calls_started_total",
    finished: "fabric_server_calls_finished_total",
    duration: "fabric_server_call_duration_seconds",
    in_flight: "fabric_server_calls_in_flight",
    who: "server",
};

const PUBLISHED: &str = "fabric_messages_published_total";
const CONFIRMS: &str = "fabric_publish_confirms_total";
const RECONNECTIONS: &str = "fabric_reconnections_total";
const LOG_RECORDS_DROPPED: &str = "fabric_log_records_dropped_total";

/// Tells the recorder each metric's unit and help text, once per process: the first time
/// anything is recorded, so a recorder installed later gets no descriptions.
fn describe() {
    static DESCRIBED: Once = Once::new();
    DESCRIBED.call_once(|| {
        for side in [&CLIENT, &SERVER] {
            let who = side.who;
            ::metrics::describe_counter!(
                side.started,
                Unit::Count,
                format!("RPC calls the {who} started, by service and method")
            );
            ::metrics::describe_counter!(
                side.finished,
                Unit::Count,
                format!("RPC calls the {who} finished, by service, method and outcome")
            );
            ::metrics::describe_histogram!(
                side.duration,
                Unit::Seconds,
                format!(
                    "How long RPC calls took as the {who} saw them, by service, method and \
                     outcome"
                )
            );
            ::metrics::describe_gauge!(
                side.in_flight,
                Unit::Count,
                format!("RPC calls the {who} has started and not finished")
            );
        }
        ::metrics::describe_counter!(
            PUBLISHED,
            Unit::Count,
            "Data messages (kind=\"data\") and events (kind=\"event\") handed to the broker"
        );
        ::metrics::describe_counter!(
            CONFIRMS,
            Unit::Count,
            "Publisher confirms: outcome=\"ack\", or \"nack\" for a nack or a confirm lost with \
             its connection"
        );
        ::metrics::describe_counter!(
            RECONNECTIONS,
            Unit::Count,
            "New broker connections made after losing one"
        );
        ::metrics::describe_counter!(
            LOG_RECORDS_DROPPED,
            Unit::Count,
            "Log records a remote logger dropped because its queue was full"
        );
    });
}

/// One call's labels and start, from its start to its finish.
#[derive(Debug)]
pub(crate) struct CallMetrics {
    side: &'static Side,
    /// `service` and `method`, shared (not copied) by every record of the call.
    labels: [Label; 2],
    started: Instant,
}

impl CallMetrics {
    /// A client's call of `service`'s `method` starts.
    pub(crate) fn client(service: &ServiceAddress, method: &str) -> CallMetrics {
        CallMetrics::start(&CLIENT, service, method)
    }

    /// A server's call of its `method` starts: it was delivered.
    pub(crate) fn server(service: &ServiceAddress, method: &str) -> CallMetrics {
        CallMetrics::start(&SERVER, service, method)
    }

    fn start(side: &'static Side, service: &ServiceAddress, method: &str) -> CallMetrics {
        describe();
        let shared = |value: &str| SharedString::from(Arc::<str>::from(value));
        let labels = [
            Label::new("service", shared(&service.fqn())),
            Label::new("method", shared(method)),
        ];
        ::metrics::counter!(side.started, labels.iter()).increment(1);
        ::metrics::gauge!(side.in_flight, labels.iter()).increment(1.0);
        CallMetrics {
            side,
            labels,
            started: Instant::now(),
        }
    }

    /// The call ended with `outcome`.
    pub(crate) fn finish(&self, outcome: &'static str) {
        let seconds = self.started.elapsed().as_secs_f64();
        let side = self.side;
        ::metrics::gauge!(side.in_flight, self.labels.iter()).decrement(1.0);
        let labels = self
            .labels
            .iter()
            .cloned()
            .chain([Label::from_static_parts("outcome", outcome)])
            .collect::<Vec<_>>();
        ::metrics::counter!(side.finished, labels.iter()).increment(1);
        ::metrics::histogram!(side.duration, labels).record(seconds);
    }
}

/// A message of `kind` was published.
pub(crate) fn published(kind: &'static str) {
    describe();
    ::metrics::counter!(PUBLISHED, "kind" => kind).increment(1);
}

/// The broker settled a published message.
pub(crate) fn confirmed(acked: bool) {
    describe();
    let outcome = if acked { "ack" } else { "nack" };
    ::metrics::counter!(CONFIRMS, "outcome" => outcome).increment(1);
}

/// The link reconnected.
pub(crate) fn reconnected() {
    describe();
    ::metrics::counter!(RECONNECTIONS).increment(1);
}

/// A remote logger dropped `count` records.
pub(crate) fn log_records_dropped(count: u64) {
    describe();
    ::metrics::counter!(LOG_RECORDS_DROPPED).increment(count);
}
