//! Python amqp-fabric peers for the interoperability tests: scripts under `tests/python`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The interpreter with amqp-fabric (`FABRIC_PYTHON`, or `python3`); a missing one fails the
/// test with what to do, never skips it.
pub fn interpreter() -> String {
    let python = std::env::var("FABRIC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let found = Command::new(&python)
        .args([
            "-c",
            "import amqp_fabric.amq_broker_connector, amqp_fabric.logging_amqp_handler",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "these tests need `{python}` with amqp-fabric: run `pip install amqp-fabric` \
         (or set FABRIC_PYTHON to an interpreter that has it)"
    );
    python
}

/// A running script; its stdout lines arrive on `lines`, its stdin stays open until
/// [`close_stdin`](Self::close_stdin) (scripts that serve stop when it closes).
pub struct Peer {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Peer {
    /// Starts `tests/python/{script}` with the broker URL and then `args`.
    pub fn spawn(script: &str, args: &[&str]) -> Peer {
        let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(interpreter())
            .arg(&path)
            .arg(super::broker_url())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {path}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, lines }
    }

    /// The next line the script prints; fails the test after 40 s of silence.
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(40))
            .expect("the Python peer printed nothing within 40 s")
    }

    /// Closes the script's stdin and expects it to exit successfully.
    pub fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait for the Python peer");
        assert!(status.success(), "the Python peer failed: {status}");
    }
}

/// Keeps a reply queue bound to `rpc.dlx` for as long as the test binary runs.
///
/// amqp-fabric declares `rpc.dlx` auto-delete, so the broker deletes it when the last queue
/// bound to it goes; an aio-pika caller that declared it an instant before then fails to bind
/// its own result queue (`NOT_FOUND - no exchange 'rpc.dlx'`). Tests that start and stop Rust
/// and Python callers side by side race for it; this binding, held by a client of its own,
/// takes the race out of the tests. (The race itself is amqp-fabric's, between its processes.)
pub fn hold_rpc_dlx() {
    static HOLDER: std::sync::OnceLock<(fabric_core::Fabric, fabric_core::RpcClient)> =
        std::sync::OnceLock::new();
    HOLDER.get_or_init(|| {
        let fabric = super::connect(
            "t-rpc-dlx-holder",
            "holder",
            &std::process::id().to_string(),
        );
        // A client starts the fabric's reply thread, which binds its reply queue to rpc.dlx.
        let client = fabric_core::RpcClient::new(&fabric, "t-rpc-dlx-holder", "nobody", "n1")
            .expect("a client of the rpc.dlx holder");
        (fabric, client)
    });
}
