//! One hop of a call chain: serves `Hop` as `{DOMAIN}.hop.{NAME}`, and relays each call to the
//! hop `NEXT` after working a while. Started as `a b`, `b c` and `c -`, three processes form
//! a chain A → B → C that one request crosses, to follow its trace and its deadline:
//!
//! - every handler sees the same `CallContext::trace_id`, and its caller's span as parent;
//! - each hop's `CallContext::remaining` is smaller than its caller's, since a nested call
//!   waits no longer than what is left of the call being handled;
//! - a hop whose caller has given up does not call the next one, and says so in its log.
//!
//! Every hop ships its log records to the domain's log exchange; records made in a handler
//! carry its trace (`log_tail`, or `LogFilter::trace_id`, picks one request's out).
//!
//! Usage: `trace_hop DOMAIN NAME NEXT` (`NEXT` is `-` for the last hop); `FABRIC_URL` names
//! the broker. It prints `serving` once its queues exist, and stops on Ctrl-C or SIGTERM.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use fabric_core::{CallContext, Error, Fabric, FabricConfig, RemoteLogger};
use fabric_examples::{broker_url, ctrl_c, Hop, HopClient, HopReport, HopServer};
use log::LevelFilter;

struct Relay {
    name: String,
    /// The next hop, if this is not the last.
    next: Option<HopClient>,
    runs: AtomicU64,
}

impl Hop for Relay {
    fn relay(&self, work_ms: Vec<u64>) -> Vec<HopReport> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let call = CallContext::current().expect("a handler runs inside a call");
        let me = HopReport {
            hop: self.name.clone(),
            trace_id: call.trace_id().to_owned(),
            span_id: call.span_id().to_owned(),
            parent_span_id: call.parent_span_id().map(str::to_owned),
            remaining_ms: call.remaining().map(|left| left.as_millis() as u64),
        };
        log::info!("hop {} relaying", self.name);
        let (work, rest) = work_ms.split_first().map_or((0, &[][..]), |(w, r)| (*w, r));
        // Simulated work: the deadline keeps running meanwhile.
        std::thread::sleep(Duration::from_millis(work));
        let mut reports = vec![me];
        if let Some(next) = &self.next {
            match next.relay(rest.to_vec()) {
                Ok(theirs) => reports.extend(theirs),
                Err(e @ Error::DeadlineExceeded { .. }) => {
                    log::warn!("hop {}: next hop not called: {e}", self.name);
                }
                Err(e) => log::error!("hop {}: next hop failed: {e}", self.name),
            }
        }
        reports
    }

    fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: trace_hop DOMAIN NAME NEXT (NEXT is - for the last hop)";
    let domain = args.next().context(usage)?;
    let name = args.next().context(usage)?;
    let next = args.next().context(usage)?;
    let fabric = Fabric::connect(FabricConfig::new(&broker_url(), &domain, "hop", &name))?;
    let _logger = RemoteLogger::builder(&fabric)
        .level(LevelFilter::Info)
        .install()?;
    let next = match next.as_str() {
        "-" => None,
        // A generous timeout of its own: inside a handler, what is left of the handler's
        // deadline is what counts.
        next => Some(
            HopClient::connect(&fabric, &domain, "hop", next)?
                .with_timeout(Duration::from_secs(30)),
        ),
    };
    let server = HopServer::new(Relay {
        name: name.clone(),
        next,
        runs: AtomicU64::new(0),
    })
    .workers(2)
    .serve(&fabric)?;
    println!("trace_hop {name}: serving {}", server.address());

    ctrl_c()?.recv()?;
    server.close()?;
    log::logger().flush();
    Ok(())
}
