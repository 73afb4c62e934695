//! fabric on a RabbitMQ cluster of three private nodes (`testing::TestCluster`): participants
//! spread over the nodes, calls across nodes, and nodes killed (`kill -9` of the VM) under
//! load: the node of a service's method queues, the node of a client (and so of its reply
//! queue), and any node under a quorum subscription or a durable service.
//!
//! The cluster is started once for the whole binary, on first use, and shared by the tests
//! one at a time; a test that kills a node starts it again (it rejoins) before it lets go.
//! Each test prints its measured figures (`cargo test -p fabric-core --test cluster --
//! --nocapture --test-threads 1` shows them in order).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use fabric_core::testing::TestCluster;
use fabric_core::{fabric_service, ConnectionState, Error, Fabric, Server};

/// The timeout of every call under load: it bounds how long any call can take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Calling threads of the client under load.
const CALLERS: usize = 16;
/// The kinds of error a call may end in when a node is lost: the documented outage errors.
const OUTAGE: [&str; 4] = [
    "call_interrupted",
    "unavailable",
    "no_such_service",
    "timeout",
];
/// How many times the test of the race the issue saw (`UnknownMethod` while the servers
/// declare their queues again) kills the node of the queues, each time another node.
const QUEUE_ROUNDS: usize = 3;
/// How many times each other kill test kills a node, each time another one: the time of a
/// node's restart and rejoin (some seconds each) bounds the binary's time.
const ROUNDS: usize = 2;

#[fabric_service]
pub trait Adder {
    /// `x + y`.
    fn add(&self, x: u64, y: u64) -> u64;
}

struct Sum;

impl Adder for Sum {
    fn add(&self, x: u64, y: u64) -> u64 {
        x + y
    }
}

/// The cluster of this binary, started on first use; a test holds it while it runs.
fn cluster() -> MutexGuard<'static, TestCluster> {
    static CLUSTER: OnceLock<Mutex<TestCluster>> = OnceLock::new();
    let started = Instant::now();
    let mut cluster = CLUSTER
        .get_or_init(|| {
            let cluster = TestCluster::start();
            eprintln!("cluster of 3 nodes formed in {:?}", started.elapsed());
            Mutex::new(cluster)
        })
        .lock()
        // A test that failed while holding it may have left a node down: start it below.
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for index in 0..cluster.nodes().len() {
        if !cluster.node(index).is_running() {
            cluster.start_again(index);
        }
    }
    cluster
}

/// A domain no other test (or earlier run) uses.
fn unique_domain(test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "c-{test}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The port of the node a fabric is connected to now.
fn connected_port(fabric: &Fabric) -> Option<u16> {
    match fabric.connection_state() {
        ConnectionState::Connected { url, .. } => url
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .and_then(|port| port.parse().ok()),
        _ => None,
    }
}

/// Which node of `cluster` has `port`.
fn node_with_port(cluster: &TestCluster, port: u16) -> Option<usize> {
    cluster.nodes().iter().position(|node| node.port() == port)
}

/// How one call under load ended.
#[derive(Debug, Clone)]
struct Ending {
    started: Instant,
    took: Duration,
    /// `ok`, or the error's kind.
    kind: &'static str,
}

/// `CALLERS` threads calling `add` in a loop until stopped, each call recorded.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    endings: Arc<Mutex<Vec<Ending>>>,
    successes: mpsc::Receiver<Instant>,
}

impl Load {
    fn start(client: &AdderClient) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let endings = Arc::new(Mutex::new(Vec::new()));
        let (success_tx, successes) = mpsc::channel();
        let threads = (0..CALLERS as u64)
            .map(|caller| {
                let client = client.clone();
                let stop = Arc::clone(&stop);
                let endings = Arc::clone(&endings);
                let success_tx = success_tx.clone();
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let outcome = client.add(caller, n);
                        let kind = match &outcome {
                            Ok(sum) => {
                                assert_eq!(*sum, caller + n, "a wrong answer");
                                "ok"
                            }
                            Err(e) => e.kind(),
                        };
                        if kind == "ok" {
                            let _ = success_tx.send(started);
                        }
                        endings.lock().unwrap().push(Ending {
                            started,
                            took: started.elapsed(),
                            kind,
                        });
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            stop,
            threads,
            endings,
            successes,
        }
    }

    /// Waits for `count` more calls to succeed (that were sent after `after`); when the
    /// first of them was sent. Panics after `limit`.
    fn await_successes(&self, after: Instant, count: usize, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        let mut first = None;
        let mut seen = 0;
        while seen < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.successes.recv_timeout(left) {
                Ok(started) if started >= after => {
                    first.get_or_insert(started);
                    seen += 1;
                }
                Ok(_) => {}
                Err(_) => panic!(
                    "{seen} of {count} calls sent after the mark succeeded within {limit:?}: {:?}",
                    self.tally()
                ),
            }
        }
        first.expect("at least one success")
    }

    fn tally(&self) -> BTreeMap<&'static str, usize> {
        let mut tally = BTreeMap::new();
        for ending in self.endings.lock().unwrap().iter() {
            *tally.entry(ending.kind).or_insert(0) += 1;
        }
        tally
    }

    /// Stops the callers and returns every call's ending.
    fn finish(self) -> Vec<Ending> {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("a calling thread panicked");
        }
        Arc::try_unwrap(self.endings)
            .map(|endings| endings.into_inner().unwrap())
            .unwrap_or_default()
    }
}

/// A client of the test's adder service on a fabric connected to node `node`.
fn client_on(cluster: &TestCluster, node: usize, domain: &str) -> (Fabric, AdderClient) {
    let fabric = cluster.connect(node, domain, "desk", "d1");
    let client = AdderClient::connect(&fabric, domain, "adder", "a1")
        .unwrap()
        .with_timeout(CALL_TIMEOUT);
    (fabric, client)
}

/// What `kill_under_load` saw.
struct Killed {
    /// The load, still calling.
    load: Load,
    /// When the node was killed.
    killed: Instant,
    /// How long until its port closed.
    dead: Duration,
    /// How long until calls were answered again, and how the probes before that ended.
    recovered: Duration,
    probes: BTreeMap<&'static str, usize>,
}

/// Kills `node` while `client` calls under load (200 calls answered first), waits until
/// calls are answered again and 100 more have been.
fn kill_under_load(cluster: &mut TestCluster, client: &AdderClient, node: usize) -> Killed {
    let load = Load::start(client);
    load.await_successes(Instant::now(), 200, Duration::from_secs(30));
    let killed = Instant::now();
    cluster.kill(node);
    let dead = killed.elapsed();
    let (recovered, probes) = recovery(client, killed, Duration::from_secs(30));
    load.await_successes(killed, 100, Duration::from_secs(30));
    Killed {
        load,
        killed,
        dead,
        recovered,
        probes,
    }
}

/// When calls were answered again after the node died (when this is called): a burst of
/// fresh calls, one every 5 ms for half a second, each on a thread of its own so that a call
/// lost in a queue that is gone does not hold up the ones after it. The time from `since` to
/// the first answer, and how the calls answered before it ended. Again until one succeeds;
/// panics after `limit`.
fn recovery(
    client: &AdderClient,
    since: Instant,
    limit: Duration,
) -> (Duration, BTreeMap<&'static str, usize>) {
    let probe = client.with_timeout(Duration::from_secs(1));
    loop {
        // (when it ended, how): every probe of the burst.
        let ended: Mutex<Vec<(Instant, Result<u64, Error>)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                let (probe, ended) = (&probe, &ended);
                scope.spawn(move || {
                    let outcome = probe.add(1, 1);
                    ended.lock().unwrap().push((Instant::now(), outcome));
                });
                // Not a wait for an event: the pace of the probes.
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut ended = ended.into_inner().unwrap();
        ended.sort_by_key(|(at, _)| *at);
        let mut failed = BTreeMap::new();
        for (at, outcome) in ended {
            match outcome {
                Ok(_) => return (at - since, failed),
                Err(e) => {
                    assert!(
                        OUTAGE.contains(&e.kind()),
                        "a probe call ended in {e:?}, not an outage error"
                    );
                    *failed.entry(e.kind()).or_insert(0) += 1;
                }
            }
        }
        assert!(
            since.elapsed() < limit,
            "no call succeeded within {limit:?}"
        );
    }
}

/// Checks the endings of a load through a node loss: every call ended within its timeout
/// (none hung) and in an outage error of the kinds `allowed`, never in another kind (such
/// as `unknown_method`). The tally by kind.
fn check_endings(endings: &[Ending], allowed: &[&str]) -> BTreeMap<&'static str, usize> {
    let mut tally = BTreeMap::new();
    for ending in endings {
        *tally.entry(ending.kind).or_insert(0) += 1;
    }
    let slowest = endings.iter().map(|e| e.took).max().unwrap_or_default();
    assert!(
        slowest < CALL_TIMEOUT + Duration::from_secs(2),
        "a call took {slowest:?}, beyond its timeout of {CALL_TIMEOUT:?}: {tally:?}"
    );
    for kind in tally.keys() {
        assert!(
            *kind == "ok" || allowed.contains(kind),
            "a call ended in `{kind}`, not one of the outage errors {allowed:?}: {tally:?}"
        );
    }
    tally
}

/// Serves `Adder` from the cluster's node `node` (the others as fallbacks).
fn serve(cluster: &TestCluster, node: usize, domain: &str, durable: bool) -> (Fabric, Server) {
    let fabric = cluster.connect(node, domain, "adder", "a1");
    let builder = AdderServer::new(Sum).workers(4);
    let builder = if durable { builder.durable() } else { builder };
    let server = builder.serve(&fabric).expect("serve");
    (fabric, server)
}

#[test]
fn participants_spread_over_the_nodes_and_calls_cross_them() {
    let cluster = cluster();
    let domain = unique_domain("spread");
    let (_server_fabric, _server) = serve(&cluster, 0, &domain, false);
    let queue = format!("{domain}.api.adder.a1::add");
    assert_eq!(cluster.node_of_queue(&queue), Some(0), "declared on node 0");

    // A client on node 2 calls a service whose queue lives on node 0.
    let client_fabric = cluster.connect(2, &domain, "desk", "d1");
    assert_eq!(
        connected_port(&client_fabric).and_then(|p| node_with_port(&cluster, p)),
        Some(2)
    );
    let client = AdderClient::connect(&client_fabric, &domain, "adder", "a1").unwrap();
    assert_eq!(client.add(40, 2).unwrap(), 42);

    // With the same list of URLs, shuffled, participants land on every node.
    let mut nodes = HashSet::new();
    let fabrics: Vec<Fabric> = (0..12)
        .map(|i| {
            let config = cluster
                .config(0, &domain, "desk", &format!("s{i}"))
                .shuffle_urls();
            let fabric = Fabric::connect(config).unwrap();
            nodes.insert(connected_port(&fabric).and_then(|p| node_with_port(&cluster, p)));
            fabric
        })
        .collect();
    assert_eq!(nodes.len(), 3, "12 shuffled participants on {nodes:?}");
    // Each calls across the cluster.
    for fabric in &fabrics {
        let client = AdderClient::connect(fabric, &domain, "adder", "a1").unwrap();
        assert_eq!(client.add(1, 2).unwrap(), 3);
    }
    eprintln!("12 participants with shuffled URLs on nodes {nodes:?}; every call answered");
}

#[test]
fn killing_the_node_of_a_service_s_queues_under_load_interrupts_calls_only_with_outage_errors() {
    let mut cluster = cluster();
    for round in 0..QUEUE_ROUNDS {
        // Round r: the queues and one server on node r, the other server on the next node,
        // the client on the third.
        let (queues_node, other_node, client_node) = (round % 3, (round + 1) % 3, (round + 2) % 3);
        let domain = unique_domain("queues");
        let (_fabric_a, server_a) = serve(&cluster, queues_node, &domain, false);
        let (_fabric_b, server_b) = serve(&cluster, other_node, &domain, false);
        let queue = format!("{domain}.api.adder.a1::add");
        assert_eq!(cluster.node_of_queue(&queue), Some(queues_node));
        let (client_fabric, client) = client_on(&cluster, client_node, &domain);

        let Killed {
            load,
            killed,
            dead,
            recovered,
            probes,
        } = kill_under_load(&mut cluster, &client, queues_node);
        assert!(
            server_a.wait_serving(Duration::from_secs(30)),
            "server a resumed"
        );
        assert!(
            server_b.wait_serving(Duration::from_secs(30)),
            "server b resumed"
        );
        let moved_to = cluster.node_of_queue(&queue);
        // Calls stranded in the lost queue end in their timeout, which `finish` waits for.
        let endings = load.finish();
        let tally = check_endings(&endings, &OUTAGE);
        let interrupted = endings
            .iter()
            .filter(|e| e.kind != "ok" && e.started + e.took >= killed)
            .count();
        eprintln!(
            "round {round}: killed node {queues_node} (method queues, server a); queues now on \
             node {moved_to:?}; gone after {dead:?} (port closed); calls answered again {recovered:?} after the kill (probes that ended before: \
             {probes:?}); {interrupted} calls interrupted; {tally:?}"
        );
        assert!(moved_to.is_some() && moved_to != Some(queues_node));
        drop((client, client_fabric, server_a, server_b));
        cluster.start_again(queues_node);
    }
}

#[test]
fn killing_the_node_of_a_client_and_its_reply_queue_under_load_interrupts_calls_only_with_outage_errors(
) {
    let mut cluster = cluster();
    for round in 0..ROUNDS {
        let (client_node, server_node) = (round % 3, (round + 1) % 3);
        let domain = unique_domain("client");
        let (_server_fabric, _server) = serve(&cluster, server_node, &domain, false);
        // The client's reply queue is exclusive: it lives on the client's node.
        let (client_fabric, client) = client_on(&cluster, client_node, &domain);
        let Killed {
            load,
            dead,
            recovered,
            probes,
            ..
        } = kill_under_load(&mut cluster, &client, client_node);
        let now_on = connected_port(&client_fabric).and_then(|p| node_with_port(&cluster, p));
        let endings = load.finish();
        let tally = check_endings(&endings, &["call_interrupted", "unavailable"]);
        eprintln!(
            "round {round}: killed node {client_node} (the client's, with its reply queue); \
             client now on node {now_on:?}; gone after {dead:?} (port closed); calls answered again {recovered:?} after the kill \
             (probes that ended before: {probes:?}); {tally:?}"
        );
        assert!(now_on.is_some() && now_on != Some(client_node));
        drop((client, client_fabric));
        cluster.start_again(client_node);
    }
}

#[test]
fn a_durable_service_loses_no_call_when_the_node_of_its_queues_dies() {
    let mut cluster = cluster();
    for round in 0..ROUNDS {
        let (queues_node, other_node, client_node) = (round % 3, (round + 1) % 3, (round + 2) % 3);
        let domain = unique_domain("durable");
        let (_fabric_a, server_a) = serve(&cluster, queues_node, &domain, true);
        let (_fabric_b, _server_b) = serve(&cluster, other_node, &domain, true);
        let queue = format!("{domain}.api.adder.a1::add");
        let leader = cluster.node_of_queue(&queue).expect("a leader");
        let (client_fabric, client) = client_on(&cluster, client_node, &domain);
        // The node of server a, whose leader it is unless the broker put it elsewhere.
        let Killed {
            load,
            killed,
            dead,
            recovered,
            probes,
        } = kill_under_load(&mut cluster, &client, queues_node);
        assert!(server_a.wait_serving(Duration::from_secs(30)));
        let endings = load.finish();
        let tally = check_endings(&endings, &[]);
        let gap = longest_gap(&endings, killed);
        eprintln!(
            "round {round}: durable: killed node {queues_node} (server a; queue leader was node \
             {leader}); every call answered; gone after {dead:?} (port closed); calls answered again {recovered:?} after the kill \
             (probes that ended before: {probes:?}); longest wait for an answer around the kill {gap:?}; \
             {tally:?}"
        );
        drop((client, client_fabric, server_a));
        cluster.start_again(queues_node);
        delete_queues(&cluster, &domain);
    }
}

/// The longest call among those that ended after `mark`.
fn longest_gap(endings: &[Ending], mark: Instant) -> Duration {
    endings
        .iter()
        .filter(|e| e.started + e.took >= mark)
        .map(|e| e.took)
        .max()
        .unwrap_or_default()
}

/// Deletes the durable queues whose names start with `prefix` (they have no auto-delete).
fn delete_queues(cluster: &TestCluster, prefix: &str) {
    let node = cluster.node(0);
    let listing = node.rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]);
    for name in listing.lines().filter(|name| name.starts_with(prefix)) {
        node.rabbitmqctl(&["delete_queue", name]);
    }
}

#[test]
fn a_quorum_subscription_loses_no_confirmed_event_when_any_node_dies() {
    const EVENTS: u64 = 3000;
    let mut cluster = cluster();
    for round in 0..ROUNDS {
        let domain = unique_domain("quorum");
        let name = format!("{domain}-inventory");
        let (subscriber_node, publisher_node) = ((round + 1) % 3, (round + 2) % 3);
        let subscriber_fabric = cluster.connect(subscriber_node, &domain, "inventory", "i1");
        let (received_tx, received) = mpsc::channel();
        let subscription = subscriber_fabric
            .event_subscriber(&name)
            .topic("order.*")
            .quorum()
            .handle(move |event| {
                let _ = received_tx.send(event.decode::<u64>().expect("an id"));
            })
            .unwrap();
        let leader = cluster.node_of_queue(&name).expect("a leader");
        let publisher = Fabric::connect(
            cluster
                .config(publisher_node, &domain, "orders", "o1")
                .persistent_messages()
                .call_timeout(Duration::from_secs(10)),
        )
        .unwrap();

        // Publish with confirms in a window; kill a node a third of the way through: the
        // queue's leader (the subscriber's node too), then the publisher's node, then the
        // node that is neither.
        let bystander = (0..3)
            .find(|n| *n != leader && *n != publisher_node)
            .unwrap_or(round % 3);
        let victim = [leader, publisher_node, bystander][round % 3];
        let mut confirmed = HashSet::new();
        let mut unconfirmed = 0;
        let mut pending = std::collections::VecDeque::new();
        let mut killed = None;
        for id in 0..EVENTS {
            if id == EVENTS / 3 {
                killed = Some(Instant::now());
                cluster.kill(victim);
            }
            match publisher.publish_event("order.created", &id) {
                Ok(receipt) => pending.push_back((id, receipt)),
                Err(_) => unconfirmed += 1,
            }
            while pending.len() > 64 || (id + 1 == EVENTS && !pending.is_empty()) {
                let (id, receipt) = pending.pop_front().unwrap();
                match receipt.wait() {
                    Ok(()) => {
                        confirmed.insert(id);
                    }
                    Err(_) => unconfirmed += 1,
                }
            }
        }
        // Every confirmed event arrives (some unconfirmed ones may too, and some twice).
        let mut got = HashSet::new();
        let mut deliveries = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !confirmed.is_subset(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(id) => {
                    deliveries += 1;
                    got.insert(id);
                }
                Err(_) => break,
            }
        }
        let lost = confirmed.difference(&got).count();
        eprintln!(
            "round {round}: quorum subscription (leader on node {leader}, subscriber on node \
             {subscriber_node}, publisher on node {publisher_node}): killed node {victim} \
             after {} events; {} confirmed, {unconfirmed} not confirmed, {} distinct received \
             ({} deliveries), {lost} confirmed events lost; publishing took {:?} after the kill",
            EVENTS / 3,
            confirmed.len(),
            got.len(),
            deliveries,
            killed.map(|k| k.elapsed()).unwrap_or_default()
        );
        assert_eq!(lost, 0, "confirmed events were lost");
        assert!(
            confirmed.len() as u64 >= EVENTS / 2,
            "most events were confirmed"
        );
        drop((subscription, subscriber_fabric, publisher));
        cluster.start_again(victim);
        delete_queues(&cluster, &name);
    }
}

#[test]
fn a_message_that_fails_every_time_is_parked_after_the_delivery_limit_and_replayed() {
    const LIMIT: u32 = 3;
    let cluster = cluster();
    let domain = unique_domain("parked");
    let name = format!("{domain}-mailer");
    let fabric = cluster.connect(1, &domain, "mailer", "m1");
    let attempts = Arc::new(AtomicU32::new(0));
    let fixed = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = mpsc::channel();
    let (failed_tx, failed) = mpsc::channel();
    let subscription = {
        let (attempts, fixed) = (Arc::clone(&attempts), Arc::clone(&fixed));
        fabric
            .event_subscriber(&name)
            .topic("mail.#")
            .delivery_limit(LIMIT)
            .try_handle(move |event| {
                let id: u64 = event.decode().expect("an id");
                if id == 13 && !fixed.load(Ordering::SeqCst) {
                    let _ = failed_tx.send(attempts.fetch_add(1, Ordering::SeqCst) + 1);
                    return Err(format!("cannot send mail {id}"));
                }
                let _ = done_tx.send(id);
                Ok(())
            })
            .unwrap()
    };
    for id in [1u64, 13, 2] {
        fabric
            .publish_event("mail.send", &id)
            .unwrap()
            .wait()
            .unwrap();
    }
    let mut delivered: Vec<u64> = (0..2)
        .map(|_| done.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, [1, 2], "the good messages are not held up");

    // Delivered once, then again up to the limit: LIMIT + 1 failures, then parked.
    for attempt in 1..=LIMIT + 1 {
        assert_eq!(failed.recv_timeout(Duration::from_secs(10)), Ok(attempt));
    }
    assert!(
        failed.recv_timeout(Duration::from_millis(500)).is_err(),
        "a parked message is not delivered again by itself"
    );
    eprintln!(
        "delivery limit {LIMIT}: the poison message was tried {} times, then parked",
        LIMIT + 1
    );

    // Fixed: put it back (the broker parks it a moment after the last failure), and it goes
    // through.
    fixed.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match fabric.replay_parked(&name).unwrap() {
            0 => {
                assert!(Instant::now() < deadline, "nothing was parked");
                // Not a wait for an event: the pace of a look at the parked queue.
                std::thread::sleep(Duration::from_millis(50));
            }
            moved => {
                assert_eq!(moved, 1);
                break;
            }
        }
    }
    assert_eq!(done.recv_timeout(Duration::from_secs(10)).unwrap(), 13);
    assert_eq!(fabric.replay_parked(&name).unwrap(), 0);
    assert_eq!(attempts.load(Ordering::SeqCst), LIMIT + 1);
    drop((subscription, fabric));
    delete_queues(&cluster, &name);
}

#[test]
fn a_method_the_service_lacks_is_still_unknown_on_a_cluster() {
    let cluster = cluster();
    let domain = unique_domain("unknown");
    let (_fabric, _server) = serve(&cluster, 0, &domain, false);
    let client_fabric = cluster.connect(1, &domain, "desk", "d1");
    let rpc = fabric_core::RpcClient::new(&client_fabric, &domain, "adder", "a1").unwrap();
    match rpc.call::<_, u64>("subtract", &()) {
        Err(Error::UnknownMethod { method, .. }) => assert_eq!(method, "subtract"),
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    let nobody = fabric_core::RpcClient::new(&client_fabric, &domain, "adder", "nobody").unwrap();
    assert!(matches!(
        nobody.call::<_, u64>("add", &()),
        Err(Error::NoSuchService { .. })
    ));
}

#[test]
fn a_health_check_queue_nobody_consumes_means_the_service_is_not_there_yet() {
    // The state a failover leaves for a moment: the service's health_check queue is there
    // (declared again, or on a node that lived) but no worker consumes it, and the method's
    // queue is not. Made here by hand: a subscriber whose queue has the health_check queue's
    // name. Before the fix, a call then ended in UnknownMethod.
    let cluster = cluster();
    let domain = unique_domain("halfway");
    let fabric = cluster.connect(0, &domain, "desk", "d1");
    let health = format!("{domain}.api.adder.a1::health_check");
    let rpc = fabric_core::RpcClient::new(&fabric, &domain, "adder", "a1").unwrap();
    let consuming = fabric
        .event_subscriber(&health)
        .topic("nothing.ever")
        .durable()
        .handle(|_| {})
        .unwrap();
    // Consumed: a service that is up without `add`.
    assert!(matches!(
        rpc.call::<_, u64>("add", &()),
        Err(Error::UnknownMethod { .. })
    ));
    drop(consuming);
    // Not consumed: not there yet.
    match rpc.call::<_, u64>("add", &()) {
        Err(Error::NoSuchService { service }) => assert_eq!(service, format!("{domain}.adder.a1")),
        other => panic!("expected NoSuchService, got {other:?}"),
    }
    drop(fabric);
    delete_queues(&cluster, &health);
}
