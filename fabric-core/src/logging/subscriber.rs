//! Tailing a domain's logs: a queue of the subscriber's own, bound so that the broker
//! delivers only the records the filter wants.

use amiquip::{AmqpValue, FieldTable};

use super::wire::{self, LEVEL_NAME, SERVICE_ID, SERVICE_TYPE, TRACE_ID};
use super::{LogLevel, LogRecord};
use crate::broker::consumer::{self, ConsumerSpec, Disposition, Subscription};
use crate::broker::topology::Declaration;
use crate::error::Result;
use crate::participant::Participant;
use crate::token::unique_token;

/// Deliveries a log subscriber holds before it acks: enough to keep a printing handler busy.
const PREFETCH: u16 = 64;

/// Which records a log subscriber wants: by sending service and by level. The default wants
/// every record of the domain.
///
/// Every condition is a header binding of the subscriber's queue, so the broker drops the
/// records the filter does not want; they never travel to the subscriber.
///
/// ```
/// use fabric_core::{LogFilter, LogLevel};
///
/// // Warnings and worse from any instance of the `billing` service.
/// let filter = LogFilter::new().service_type("billing").min_level(LogLevel::Warning);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    service_type: Option<String>,
    service_id: Option<String>,
    trace_id: Option<String>,
    min_level: Option<LogLevel>,
}

impl LogFilter {
    /// Every record of the domain.
    pub fn new() -> LogFilter {
        LogFilter::default()
    }

    /// Only records from services of this type.
    pub fn service_type(mut self, service_type: &str) -> Self {
        self.service_type = Some(service_type.to_owned());
        self
    }

    /// Only records from services with this id.
    pub fn service_id(mut self, service_id: &str) -> Self {
        self.service_id = Some(service_id.to_owned());
        self
    }

    /// Only records made while handling a call of the trace `trace_id` (32 lowercase hex
    /// digits, as [`CallContext::trace_id`](crate::CallContext::trace_id) gives it): one
    /// request's records, across every service it went through.
    pub fn trace_id(mut self, trace_id: &str) -> Self {
        self.trace_id = Some(trace_id.to_owned());
        self
    }

    /// Only records at `level` or above. Rust's `Trace` records travel as `DEBUG`, so
    /// `LogLevel::Debug` lets them through (tell them apart with
    /// [`LogRecord::rust_level`]). Records whose level name is not one of the five are then
    /// left out too.
    pub fn min_level(mut self, level: LogLevel) -> Self {
        self.min_level = Some(level);
        self
    }

    /// The queue's bindings to the log exchange.
    ///
    /// A headers binding matches one value per header, so "any of these levels" cannot be
    /// one binding: there is one binding per wanted level, each requiring (`x-match=all`)
    /// that level and the wanted service. A record has one level, so it matches at most one
    /// binding, and the broker puts a message in a queue once however many bindings match.
    pub(crate) fn bindings(&self, queue: &str, exchange: &str) -> Vec<Declaration> {
        let mut service = FieldTable::default();
        service.insert("x-match".to_owned(), text("all"));
        if let Some(service_type) = &self.service_type {
            service.insert(SERVICE_TYPE.to_owned(), text(service_type));
        }
        if let Some(service_id) = &self.service_id {
            service.insert(SERVICE_ID.to_owned(), text(service_id));
        }
        if let Some(trace_id) = &self.trace_id {
            service.insert(TRACE_ID.to_owned(), text(trace_id));
        }
        let binding = |arguments: FieldTable| Declaration::Binding {
            queue: queue.to_owned(),
            exchange: exchange.to_owned(),
            routing_key: String::new(),
            arguments,
        };
        match self.min_level {
            // `x-match=all` over no other header matches every message.
            None => vec![binding(service)],
            Some(min) => LogLevel::ALL
                .into_iter()
                .filter(|level| *level >= min)
                .map(|level| {
                    let mut arguments = service.clone();
                    arguments.insert(LEVEL_NAME.to_owned(), text(level.name()));
                    binding(arguments)
                })
                .collect(),
        }
    }
}

fn text(s: &str) -> AmqpValue {
    AmqpValue::LongString(s.to_owned())
}

/// Tails the logs of the participant's domain: `handler` runs, on a thread of the
/// subscription's own, for each record that `filter` lets through (see
/// [`Fabric::subscribe_logs`](crate::Fabric::subscribe_logs)).
pub(crate) fn subscribe<F>(
    participant: &Participant,
    filter: &LogFilter,
    mut handler: F,
) -> Result<Subscription>
where
    F: FnMut(LogRecord) + Send + 'static,
{
    let address = participant.address();
    let exchange = address.log_exchange();
    let queue = address.log_tail_queue(&unique_token());
    let mut declarations = vec![
        wire::exchange_declaration(&exchange),
        Declaration::Queue {
            name: queue.clone(),
            durable: false,
            auto_delete: true,
            exclusive: true,
            arguments: FieldTable::default(),
        },
    ];
    declarations.extend(filter.bindings(&queue, &exchange));
    let spec = ConsumerSpec {
        thread_name: "fabric-log-tail".to_owned(),
        declarations,
        queue,
        prefetch: PREFETCH,
    };
    let link = std::sync::Arc::clone(participant.link());
    consumer::spawn(link, participant.hold(), spec, move |incoming| {
        handler(wire::decode(incoming));
        Disposition::Ack
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(declaration: &Declaration) -> Vec<(String, String)> {
        match declaration {
            Declaration::Binding { arguments, .. } => arguments
                .iter()
                .map(|(k, v)| match v {
                    AmqpValue::LongString(s) => (k.clone(), s.clone()),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("not a binding: {other}"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_filter_is_one_binding_that_matches_everything() {
        let bindings = LogFilter::new().bindings("q", "d.log.records");
        assert_eq!(bindings.len(), 1);
        assert_eq!(arguments(&bindings[0]), pairs(&[("x-match", "all")]));
    }

    #[test]
    fn a_level_filter_binds_each_wanted_level_with_the_service() {
        let bindings = LogFilter::new()
            .service_type("shop")
            .service_id("s1")
            .min_level(LogLevel::Error)
            .bindings("q", "d.log.records");
        assert_eq!(bindings.len(), 2);
        assert_eq!(
            arguments(&bindings[0]),
            pairs(&[
                ("level_name", "ERROR"),
                ("service_id", "s1"),
                ("service_type", "shop"),
                ("x-match", "all"),
            ])
        );
        assert_eq!(
            arguments(&bindings[1])[0],
            pairs(&[("level_name", "CRITICAL")])[0]
        );
    }
}
