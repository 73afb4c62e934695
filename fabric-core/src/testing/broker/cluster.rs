//! A RabbitMQ cluster of a test's own: [`TestCluster`], three (or more) [`TestBroker`]s that
//! share an Erlang cookie and are joined into one cluster, to kill nodes under load.

use std::time::{Duration, Instant};

use super::TestBroker;
use crate::token::unique_token;
use crate::{Fabric, FabricConfig};

/// How long the nodes may take to see each other after a join or a restart.
const FORM_TIMEOUT: Duration = Duration::from_secs(90);

/// A RabbitMQ cluster of private nodes: each a [`TestBroker`] (its own ports, directory and
/// `HOME`), all with one Erlang cookie of the cluster's own, joined to the first node with
/// `rabbitmqctl stop_app`, `join_cluster` and `start_app`.
///
/// A participant of the cluster is configured with one node's URL first and the others as
/// fallbacks ([`config`](Self::config)), as a service of a real cluster would be. Nodes are
/// killed with [`kill`](Self::kill) (SIGKILL of the VM) and come back, rejoining the cluster
/// from their own data, with [`start_again`](Self::start_again). Dropping the cluster stops
/// every node and removes their files; as for a single `TestBroker`, no node outlives the
/// test process.
///
/// ```no_run
/// use fabric_core::testing::TestCluster;
///
/// let mut cluster = TestCluster::start();
/// let server = cluster.connect(0, "shop", "stock", "s1");   // node 0 first, then 1 and 2
/// let client = cluster.connect(2, "shop", "desk", "d1");    // node 2 first
/// // ... serve on `server`, call from `client`: calls cross nodes ...
/// cluster.kill(0);                                          // `server` fails over to node 1
/// cluster.start_again(0);                                   // node 0 rejoins
/// ```
#[derive(Debug)]
pub struct TestCluster {
    nodes: Vec<TestBroker>,
}

impl TestCluster {
    /// Starts a cluster of three nodes and waits until every node runs in it (some tens of
    /// seconds: three Erlang VMs boot, two of them twice).
    ///
    /// # Panics
    ///
    /// As [`TestBroker::start`]; and if a node cannot join, with its `rabbitmqctl` error and
    /// the end of its log.
    pub fn start() -> TestCluster {
        TestCluster::with_nodes(3)
    }

    /// Starts a cluster of `nodes` nodes (at least 1). Panics as [`start`](Self::start).
    pub fn with_nodes(nodes: usize) -> TestCluster {
        let cookie = format!("FABRICTEST{}", unique_token().to_uppercase());
        // The nodes boot side by side: most of the wait is each VM starting.
        let nodes: Vec<TestBroker> = std::thread::scope(|scope| {
            let booting: Vec<_> = (0..nodes.max(1))
                .map(|_| scope.spawn(|| TestBroker::launch_with(None, Some(&cookie))))
                .collect();
            booting
                .into_iter()
                .map(|node| {
                    node.join()
                        .unwrap_or_else(|_| panic!("a cluster node failed to start"))
                })
                .collect()
        });
        let cluster = TestCluster { nodes };
        let first = cluster.nodes[0].node_name().to_owned();
        for node in &cluster.nodes[1..] {
            node.rabbitmqctl(&["stop_app"]);
            let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                node.rabbitmqctl(&["join_cluster", &first])
            }));
            if let Err(why) = joined {
                let why = why
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "rabbitmqctl join_cluster failed".to_owned());
                panic!(
                    "node {} could not join {first}: {why}\n{}",
                    node.node_name(),
                    node.last_output()
                );
            }
            node.rabbitmqctl(&["start_app"]);
        }
        let mut cluster = cluster;
        for node in &mut cluster.nodes {
            node.await_amqp();
        }
        cluster.await_formed();
        cluster
    }

    /// The nodes, in the order they were started; node 0 is the one the others joined.
    pub fn nodes(&self) -> &[TestBroker] {
        &self.nodes
    }

    /// Node `index`.
    ///
    /// # Panics
    ///
    /// If there is no such node.
    pub fn node(&self, index: usize) -> &TestBroker {
        &self.nodes[index]
    }

    /// The AMQP URLs of every node, node `first` first and then the others in order: the
    /// list a participant that should prefer node `first` is given.
    pub fn urls_from(&self, first: usize) -> Vec<String> {
        let n = self.nodes.len();
        (0..n).map(|i| self.nodes[(first + i) % n].url()).collect()
    }

    /// The configuration of a participant that connects to node `first` and falls back on the
    /// other nodes ([`FabricConfig::fallback_url`]), with the short heartbeats and connect
    /// timeout of [`TestBroker::config`], and a reconnection backoff that starts at 50 ms.
    pub fn config(
        &self,
        first: usize,
        domain: &str,
        service_type: &str,
        service_id: &str,
    ) -> FabricConfig {
        let urls = self.urls_from(first);
        let mut config = self.nodes[first % self.nodes.len()]
            .config(domain, service_type, service_id)
            .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2));
        for url in &urls[1..] {
            config = config.fallback_url(url);
        }
        config
    }

    /// Connects a participant configured by [`config`](Self::config).
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    pub fn connect(
        &self,
        first: usize,
        domain: &str,
        service_type: &str,
        service_id: &str,
    ) -> Fabric {
        Fabric::connect(self.config(first, domain, service_type, service_id))
            .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"))
    }

    /// Kills node `index` (SIGKILL of its VM): its clients' sockets die, and the other nodes
    /// see it go down. Waits until its port is closed.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Stops node `index` gracefully.
    pub fn stop(&mut self, index: usize) {
        self.nodes[index].stop();
    }

    /// Starts node `index` again after [`kill`](Self::kill) or [`stop`](Self::stop), and
    /// waits until it has rejoined the cluster (every node sees every other running).
    pub fn start_again(&mut self, index: usize) {
        self.nodes[index].start_again();
        self.await_formed();
    }

    /// The index of the node that holds queue `queue`: a classic queue's node, or a quorum
    /// queue's leader. `None` if no running node lists it.
    pub fn node_of_queue(&self, queue: &str) -> Option<usize> {
        let asker = self.nodes.iter().find(|node| node.is_running())?;
        let listing = asker.rabbitmqctl(&[
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "type",
            "pid",
            "leader",
        ]);
        let line = listing
            .lines()
            .find(|line| line.split('\t').next() == Some(queue))?;
        let fields: Vec<&str> = line.split('\t').collect();
        // A classic queue's pid names its node (`<rabbit@host.1.2.3>`); a quorum queue's
        // leader is a node name.
        let holder = match fields.get(1) {
            Some(&"quorum") => fields.get(3).copied().unwrap_or_default(),
            _ => fields.get(2).copied().unwrap_or_default(),
        };
        self.nodes
            .iter()
            .position(|node| holder.contains(node.node_name()))
    }

    /// Waits until every running node lists every other running node as running.
    fn await_formed(&self) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        let running: Vec<&TestBroker> = self.nodes.iter().filter(|n| n.is_running()).collect();
        loop {
            let formed = running.iter().all(|node| {
                let status = node.rabbitmqctl(&["cluster_status", "--formatter", "json"]);
                running.iter().all(|other| {
                    running_nodes(&status)
                        .iter()
                        .any(|name| name == other.node_name())
                })
            });
            if formed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster did not form within {FORM_TIMEOUT:?}:\n{}",
                running
                    .iter()
                    .map(|node| node.last_output())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The `running_nodes` of `rabbitmqctl cluster_status --formatter json`.
fn running_nodes(status: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(status)
        .ok()
        .and_then(|status| status.get("running_nodes").cloned())
        .and_then(|nodes| serde_json::from_value(nodes).ok())
        .unwrap_or_default()
}
