//! A RabbitMQ node of a test's own: [`TestBroker`], to start, stop, kill and restart without
//! disturbing anyone.
//!
//! [`TestBroker::start`] runs a node of the installed RabbitMQ, beside any other:
//!
//! - its own node name `fabric-test-{pid}-{n}@localhost` (registered with the machine's
//!   epmd like any node), its own AMQP port and Erlang distribution port (free ports picked
//!   at start, kept across restarts so [`url`](TestBroker::url) stays valid), both on
//!   127.0.0.1 only;
//! - its own directory under the system's temp dir holding everything the node writes:
//!   database (`RABBITMQ_MNESIA_BASE`), logs, schema, feature flags, pid file, plugin
//!   expansion, crash dump, and `HOME` (so its Erlang cookie is its own too);
//! - its own `rabbitmq.conf` (only the listener), an empty `rabbitmq-env.conf` and an empty
//!   enabled-plugins file, so nothing of another node's configuration (its listener on
//!   5672, its plugins and their HTTP ports) is read;
//! - with [`TestBroker::start_with_tls`], a TLS listener on a third free port too.
//!
//! The node runs under a small `sh` wrapper whose stdin is a pipe from the test process: when
//! the test process ends in any way, even SIGKILL, the pipe closes and the wrapper stops the
//! node, so no node outlives its test. Dropping the [`TestBroker`] stops the node and
//! removes its directory; the directory of a test process that was killed is removed by the
//! next [`TestBroker::start`].

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Fabric, FabricConfig};
use host::{
    accepts, free_port, next_number, server_script, speaks_amqp, sweep_stale_dirs, wait_for_exit,
};

mod cluster;
mod files;
mod host;

pub use cluster::TestCluster;
pub use host::scratch_dir;

/// How long a node may take to boot and accept AMQP.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a graceful stop may take before the VM is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the start script in the background and stops it when stdin closes (the test
/// process let go of it, or died). `$1` is the start script, `$2` the node's directory.
/// Ctrl-C and hang-ups are ignored: they end the test process, which closes stdin.
const WRAPPER: &str = r#"
"$1" >>"$2/server.out" 2>&1 &
server=$!
trap '' INT HUP
read -r _ignored || true
kill -TERM "$server" 2>/dev/null
wait "$server"
"#;

/// The TLS listener of a [`TestBroker`]: the files of its CA and server certificate. Client
/// certificates signed by the CA are verified when sent, not required.
#[derive(Debug, Clone)]
pub struct TlsListener {
    /// The CA that signs the server certificate and the client certificates the node trusts.
    pub cacertfile: PathBuf,
    /// The server certificate (PEM), for the name `localhost`.
    pub certfile: PathBuf,
    /// The server certificate's private key (PEM).
    pub keyfile: PathBuf,
    /// Offer EXTERNAL login beside PLAIN: the user is the client certificate's common name.
    pub external_auth: bool,
}

/// A RabbitMQ node of a test's own, on free ports with its own data directory: to run
/// services against, and to stop, kill and restart for fault tests.
///
/// See the [`testing`](crate::testing) module for how it is isolated. Dropping it stops the
/// node and removes its files.
///
/// ```no_run
/// use fabric_core::testing::TestBroker;
/// use fabric_core::{Error, Fabric, RpcClient};
/// use std::time::Duration;
///
/// let mut broker = TestBroker::start();
/// let fabric = Fabric::connect(broker.config("shop", "client", "c1")).unwrap();
/// let stock = RpcClient::new(&fabric, "shop", "stock", "s1").unwrap()
///     .with_timeout(Duration::from_secs(2));
///
/// broker.kill(); // SIGKILL of the Erlang VM: the connection just dies
/// let count: Result<u32, Error> = stock.call("count", &());
/// assert!(matches!(count, Err(Error::Unavailable { .. } | Error::CallInterrupted { .. })));
///
/// broker.start_again(); // same ports, same data: the fabric reconnects by itself
/// ```
#[derive(Debug)]
pub struct TestBroker {
    node: String,
    dir: PathBuf,
    amqp_port: u16,
    dist_port: u16,
    /// The TLS listener and its port, when there is one.
    tls: Option<(TlsListener, u16)>,
    /// The wrapper and the pipe that keeps it (and so the node) running; `None` when stopped.
    running: Option<(Child, ChildStdin)>,
}

impl TestBroker {
    /// The output of `rabbitmqctl ARGS` on this node, to add users, set permissions, list
    /// queues or close connections. `rabbitmqctl` must be on the `PATH`; the node's cookie is
    /// passed on the command line (the packaged `rabbitmqctl` runs as the `rabbitmq` user, with
    /// that user's).
    ///
    /// # Panics
    ///
    /// If `rabbitmqctl` cannot run or fails: the panic has its error output.
    pub fn rabbitmqctl(&self, args: &[&str]) -> String {
        let cookie_file = self.dir().join("home").join(".erlang.cookie");
        let cookie = std::fs::read_to_string(&cookie_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", cookie_file.display()));
        let output = Command::new("rabbitmqctl")
            .args(["-n", self.node_name(), "--erlang-cookie", cookie.trim()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run rabbitmqctl {args:?}: {e}"));
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Closes the connection of the participant `fqn` (`{domain}.{type}.{id}`) on this node,
    /// as an operator would: its clients see the connection closed by the broker.
    ///
    /// # Panics
    ///
    /// If the participant has no connection to this node.
    pub fn close_connection_of(&self, fqn: &str) {
        let connections = self.rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ]);
        // fabric names its connections after the participant.
        let wanted = format!("fabric {fqn}\"");
        let pid = connections
            .lines()
            .find(|line| line.contains(&wanted))
            .and_then(|line| line.split('\t').next())
            .unwrap_or_else(|| panic!("no connection of {fqn} in:\n{connections}"))
            .to_owned();
        self.rabbitmqctl(&["close_connection", &pid, "closed by a test"]);
    }

    /// Starts a fresh node and waits until it accepts AMQP connections (a few seconds: an
    /// Erlang VM boots).
    ///
    /// The start script is `/usr/lib/rabbitmq/bin/rabbitmq-server` (the Debian and Ubuntu
    /// package's), else `rabbitmq-server` on the `PATH`; `FABRIC_TEST_RABBITMQ_SERVER` names
    /// another.
    ///
    /// # Panics
    ///
    /// A test broker is for tests, so anything that goes wrong panics with what to look at,
    /// and never skips: without RabbitMQ installed, with how to install it; when the node
    /// does not come up within 90 s, with the end of its log.
    pub fn start() -> TestBroker {
        TestBroker::launch(None)
    }

    /// Starts a fresh node with a TLS listener beside the plain one, and waits until both
    /// accept connections. Panics as [`start`](Self::start) does.
    pub fn start_with_tls(listener: TlsListener) -> TestBroker {
        TestBroker::launch(Some(listener))
    }

    fn launch(tls: Option<TlsListener>) -> TestBroker {
        TestBroker::launch_with(tls, None)
    }

    /// Starts a fresh node; with `cookie`, its Erlang cookie is that one (the nodes of a
    /// [`TestCluster`] share one), else a cookie of its own is made at its first boot.
    pub(super) fn launch_with(tls: Option<TlsListener>, cookie: Option<&str>) -> TestBroker {
        let n = next_number();
        let node = format!("fabric-test-{}-{n}@localhost", std::process::id());
        let dir = std::env::temp_dir().join(format!("fabric-test-{}-{n}", std::process::id()));
        sweep_stale_dirs();
        let _ = std::fs::remove_dir_all(&dir);
        let mut ports = Vec::new();
        while ports.len() < 3 {
            let port = free_port();
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        let mut broker = TestBroker {
            node,
            dir,
            amqp_port: ports[0],
            dist_port: ports[1],
            tls: tls.map(|listener| (listener, ports[2])),
            running: None,
        };
        broker.write_config();
        if let Some(cookie) = cookie {
            broker.write_cookie(cookie);
        }
        broker.start_again();
        broker
    }

    /// The AMQP URL of this node.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// The node's AMQP port.
    pub fn port(&self) -> u16 {
        self.amqp_port
    }

    /// The node's TLS port; panics if it has none.
    pub fn tls_port(&self) -> u16 {
        self.tls
            .as_ref()
            .map(|(_, port)| *port)
            .expect("this test broker was started without TLS")
    }

    /// An `amqps://` URL of this node as `guest` (by the name `localhost`, which the test
    /// server certificates carry), with the query parameters `query`.
    pub fn amqps_url(&self, query: &str) -> String {
        format!(
            "amqps://guest:guest@localhost:{}/%2f?{query}",
            self.tls_port()
        )
    }

    /// The node's name, for `rabbitmqctl -n` (with `HOME` set to [`dir`](Self::dir), where
    /// its cookie is).
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The directory holding all the node's files; its logs are under `log/`, and what the
    /// start script printed in `server.out`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the node was started and not stopped or killed since.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The configuration of a participant `domain.service_type.service_id` on this node,
    /// with short heartbeats (5 s), so that a dead node is noticed soon.
    pub fn config(&self, domain: &str, service_type: &str, service_id: &str) -> FabricConfig {
        FabricConfig::new(&self.url(), domain, service_type, service_id)
            .heartbeat(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(10))
    }

    /// Connects a fabric participant to this node, configured by [`config`](Self::config).
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    pub fn connect(&self, domain: &str, service_type: &str, service_id: &str) -> Fabric {
        Fabric::connect(self.config(domain, service_type, service_id))
            .unwrap_or_else(|e| panic!("cannot connect to the test broker {}: {e}", self.node))
    }

    /// Stops the node gracefully and starts it again, with the same name, ports and data:
    /// [`stop`](Self::stop) then [`start_again`](Self::start_again).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Starts the node again after [`stop`](Self::stop) or [`kill`](Self::kill), with the
    /// same name, ports and data (durable exchanges and queues survive), and waits until it
    /// accepts AMQP. Does nothing if it runs.
    pub fn start_again(&mut self) {
        if self.running.is_some() {
            return;
        }
        // The pid file of a killed node would say it still runs.
        let _ = std::fs::remove_file(self.pid_file());
        let script = server_script();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg("fabric-private-broker")
            .arg(&script)
            .arg(&self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in self.environment() {
            command.env(name, value);
        }
        // Whatever the test's environment says about RabbitMQ is for the main node.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("RABBITMQ_") && !self.environment().iter().any(|(n, _)| *n == name)
            {
                command.env_remove(&name);
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sh to start {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("the wrapper's stdin is piped");
        self.running = Some((child, stdin));
        self.await_amqp();
    }

    /// Stops the node gracefully (RabbitMQ closes its connections with CONNECTION_FORCED)
    /// and waits until it has; kills the VM if it takes longer than a minute.
    pub fn stop(&mut self) {
        let Some((mut child, stdin)) = self.running.take() else {
            return;
        };
        // The wrapper sees its stdin close and sends SIGTERM to the start script, which
        // stops the VM.
        drop(stdin);
        if !wait_for_exit(&mut child, STOP_TIMEOUT) {
            self.kill_vm();
            let _ = wait_for_exit(&mut child, STOP_TIMEOUT);
        }
        self.await_port_closed();
    }

    /// Kills the node's Erlang VM with SIGKILL: no goodbye to clients, their sockets just
    /// die. Waits until it is gone.
    pub fn kill(&mut self) {
        let Some((mut child, stdin)) = self.running.take() else {
            return;
        };
        self.kill_vm();
        drop(stdin);
        if !wait_for_exit(&mut child, STOP_TIMEOUT) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.await_port_closed();
    }

    fn kill_vm(&self) {
        match self.vm_pid() {
            Some(pid) => {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            None => eprintln!(
                "test broker {}: no pid file at {}, cannot kill its VM",
                self.node,
                self.pid_file().display()
            ),
        }
    }

    /// Waits until the node answers the AMQP protocol header with `connection.start`, and
    /// its TLS listener, if any, accepts connections.
    fn await_amqp(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let tls_port = self.tls.as_ref().map(|(_, port)| *port);
        loop {
            if speaks_amqp(self.amqp_port) && tls_port.is_none_or(accepts) {
                return;
            }
            if let Some((child, _)) = &mut self.running {
                if let Ok(Some(status)) = child.try_wait() {
                    self.running = None;
                    panic!(
                        "test broker {} exited ({status}) before it accepted AMQP:\n{}",
                        self.node,
                        self.last_output()
                    );
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "test broker {} did not accept AMQP on port {} within {START_TIMEOUT:?}:\n{}",
                    self.node,
                    self.amqp_port,
                    self.last_output()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn await_port_closed(&self) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while (accepts(self.amqp_port) || self.tls.as_ref().is_some_and(|(_, p)| accepts(*p)))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
