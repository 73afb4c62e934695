//! The conformance suite: amqp-fabric's own test suite, taken from its PyPI sdist, run with its
//! server side played by fabric.
//!
//! The step: download the pinned sdist with pip, unpack it under cargo's target tmp
//! directory (never into the repository), and run its `tests/` with pytest twice, at once:
//! - against amqp-fabric's own Python server: the baseline, printed, not asserted (its
//!   tests sleep and race on a loaded machine as they do anywhere);
//! - with our pytest plugin (`tests/conformance/fabric_conformance.py`), which hands every
//!   server-side act of amqp-fabric's connector (serving an API, keep-alives, `publish_data`,
//!   log records) to a `conformance_peer` process, fabric in Rust. Every test must pass.
//!
//! Each run gets a RabbitMQ virtual host of its own, made with `rabbitmqctl` and deleted
//! afterwards: `test_list_services` compares the listing with the literal domain
//! `some-domain`, so a unique `SERVICE_DOMAIN` cannot isolate it, and its listener hears
//! every keep-alive of the virtual host, other engineers' tests' included. `SERVICE_ID`,
//! which the tests allow, is unique anyway, so that the Rust side is seen to take its names
//! from the connector.
//!
//! Nothing is excused: no assertion of the suite is rewritten. amqp-fabric's module path in
//! `something_wrong`'s error type is matched by the Rust error's serde name.
//!
//! Needs: RabbitMQ on the broker URL (`FABRIC_URL`) with `rabbitmqctl` for it, network access
//! to PyPI, and `python3` (or `FABRIC_PYTHON`) with pytest, pytest-asyncio and amqp-fabric's
//! dependencies; a missing piece fails the test with what to do.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabric_examples::broker_url;

/// The release whose tests are run: pinned, as the tests of a later one may differ.
const SDIST_REQUIREMENT: &str = "amqp-fabric==0.2.3";
/// The folder the sdist unpacks to.
const SDIST_FOLDER: &str = "amqp_fabric-0.2.3";
/// What installs the Python side (`ci/test.sh` does).
const PIP_INSTALL: &str =
    "python3 -m pip install amqp-fabric==0.2.3 pytest==8.4.2 pytest-asyncio==1.2.0";
/// Every test of the suite, as `module::function`: each must run and pass against Rust.
const SUITE: [&str; 7] = [
    "test_amqp_broker_connector.py::test_rpc_server",
    "test_amqp_broker_connector.py::test_rpc_server_invalid_exchange",
    "test_amqp_broker_connector.py::test_list_services",
    "test_amqp_broker_connector.py::test_keepalive_subscribe",
    "test_amqp_broker_connector.py::test_publish_data",
    "test_amqp_logging.py::test_publish_log",
    "test_high_availability.py::test_response",
];
/// A run takes about 20 s (the suite sleeps 8 s in one test and 4 s in another).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// How the plugin marks its summary lines.
const PLUGIN_PREFIX: &str = "FABRIC-CONFORMANCE ";
/// Environment variables amqp-fabric or its tests read, which must not leak in from outside.
const SUITE_VARIABLES: [&str; 10] = [
    "RPC_EXCHANGE_NAME",
    "DATA_EXCHANGE_NAME",
    "DISCOVERY_EXCHANGE_NAME",
    "DISCOVERY_CACHE_TTL",
    "MAX_DISCOVERY_CACHE_ENTRIES",
    "SERVICE_TYPE",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTHONSTARTUP",
    "PYTHONHOME",
];

#[test]
fn amqp_fabric_test_suite_passes_against_a_rust_server() {
    let started = Instant::now();
    let python = python();
    let work = WorkDir::new();

    // rabbitmqctl takes a second or two a call: it works while pip downloads.
    let (sdist, vhosts) = std::thread::scope(|s| {
        let python_vhost = s.spawn(|| Vhost::create("python"));
        let rust_vhost = s.spawn(|| Vhost::create("rust"));
        let sdist = download_sdist(&python, &work.0);
        let vhosts = [python_vhost.join(), rust_vhost.join()]
            .map(|vhost| vhost.expect("create a virtual host"));
        (sdist, vhosts)
    });
    let prepared = started.elapsed();

    let [python_vhost, rust_vhost] = &vhosts;
    let (baseline, rust) = std::thread::scope(|s| {
        let baseline = s.spawn(|| run_suite(&python, &sdist, python_vhost, Side::Python));
        let rust = run_suite(&python, &sdist, rust_vhost, Side::Rust);
        (baseline.join().expect("the baseline run"), rust)
    });
    drop(vhosts);

    report(&baseline, &rust);
    println!(
        "time: {:.1} s in all ({:.1} s to download, unpack and make the virtual hosts; \
         runs side by side: Python {:.1} s, Rust {:.1} s)",
        started.elapsed().as_secs_f64(),
        prepared.as_secs_f64(),
        baseline.took.as_secs_f64(),
        rust.took.as_secs_f64()
    );

    for test in SUITE {
        assert!(
            baseline.outcomes.contains_key(test),
            "the baseline did not run {test}: does the sdist still have it?\n{}",
            baseline.output
        );
    }
    let failed: Vec<String> = SUITE
        .iter()
        .filter(|test| !rust.outcome(test).passed())
        .map(|test| format!("  {test}: {}", rust.outcome(test)))
        .collect();
    assert!(
        failed.is_empty(),
        "amqp-fabric's tests that fail against fabric:\n{}\n\npytest's output:\n{}",
        failed.join("\n"),
        rust.output
    );
    for test in SUITE {
        assert!(
            rust.peers.contains_key(test),
            "{test} passed without a Rust peer: the plugin played no server side in it\n{}",
            rust.output
        );
    }
}

/// Which server the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Python,
    Rust,
}

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed(String),
    Error(String),
    Skipped(String),
    NotRun,
}

impl Outcome {
    fn passed(&self) -> bool {
        *self == Outcome::Passed
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Passed => f.write_str("passed"),
            Outcome::Failed(why) => write!(f, "FAILED {why}"),
            Outcome::Error(why) => write!(f, "ERROR {why}"),
            Outcome::Skipped(why) => write!(f, "SKIPPED {why}"),
            Outcome::NotRun => f.write_str("NOT RUN"),
        }
    }
}

/// What one pytest run said.
struct Run {
    side: Side,
    outcomes: BTreeMap<String, Outcome>,
    /// Seconds each test's call took.
    durations: BTreeMap<String, f64>,
    /// What the Rust peers did in each test, from the plugin's summary.
    peers: BTreeMap<String, String>,
    output: String,
    took: Duration,
}

impl Run {
    fn outcome(&self, test: &str) -> Outcome {
        self.outcomes.get(test).cloned().unwrap_or(Outcome::NotRun)
    }

    fn passes(&self) -> usize {
        SUITE.iter().filter(|t| self.outcome(t).passed()).count()
    }
}

/// The interpreter, checked for everything the suite imports.
fn python() -> String {
    let python = std::env::var("FABRIC_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let check = "import pytest, pytest_asyncio, aio_pika, apscheduler, cachetools; \
                 print('pytest', pytest.__version__, 'pytest-asyncio', pytest_asyncio.__version__, \
                 'aio-pika', aio_pika.__version__)";
    match Command::new(&python).args(["-c", check]).output() {
        Ok(out) if out.status.success() => {
            println!(
                "using {python}: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
            python
        }
        Ok(out) => panic!(
            "the conformance suite needs pytest, pytest-asyncio and amqp-fabric's dependencies \
             in `{python}`: run `{PIP_INSTALL}` (or set FABRIC_PYTHON)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "the conformance suite needs `{python}` ({e}): install Python 3 and run \
             `{PIP_INSTALL}` (or set FABRIC_PYTHON)"
        ),
    }
}

/// A folder under cargo's target tmp directory, removed when the test ends.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> WorkDir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the work folder");
        WorkDir(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Downloads and unpacks the pinned sdist into `work`; returns the unpacked folder.
fn download_sdist(python: &str, work: &Path) -> PathBuf {
    let download = run(Command::new(python)
        .args(["-m", "pip", "download", "--no-binary", ":all:", "--no-deps"])
        .args(["--disable-pip-version-check", "--quiet", "--dest"])
        .arg(work)
        .arg(SDIST_REQUIREMENT));
    assert!(
        download.status.success(),
        "pip cannot download {SDIST_REQUIREMENT} (the conformance suite needs PyPI): {}",
        String::from_utf8_lossy(&download.stderr)
    );
    let archive = work.join(format!("{SDIST_FOLDER}.tar.gz"));
    let unpack = run(Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(work));
    assert!(
        unpack.status.success(),
        "cannot unpack {}: {}",
        archive.display(),
        String::from_utf8_lossy(&unpack.stderr)
    );
    let sdist = work.join(SDIST_FOLDER);
    assert!(
        sdist.join("tests/conftest.py").is_file(),
        "{SDIST_REQUIREMENT}'s sdist has no tests/conftest.py"
    );
    sdist
}

/// Runs `command` to its end, its output collected.
fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// A RabbitMQ virtual host made for one run, deleted when dropped.
struct Vhost {
    name: String,
    url: String,
}

impl Vhost {
    fn create(run: &str) -> Vhost {
        let base = broker_url();
        let name = format!("fabric-conformance-{run}-{}", std::process::id());
        let url = with_vhost(&base, &name);
        rabbitmqctl(&["add_vhost", &name]);
        let vhost = Vhost { name, url };
        let user = user_of(&base);
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &vhost.name,
            &user,
            ".*",
            ".*",
            ".*",
        ]);
        vhost
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let out = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .output();
        if !out.is_ok_and(|out| out.status.success()) {
            eprintln!(
                "could not delete the virtual host {}; `rabbitmqctl delete_vhost {}` does",
                self.name, self.name
            );
        }
    }
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "rabbitmqctl {args:?} failed: the conformance suite makes a virtual host of its own \
             on the broker at {} (start one with `bash ci/broker.sh`)\n{}",
            broker_url(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run rabbitmqctl ({e}): the conformance suite makes a virtual host of its \
             own with it (start the broker with `bash ci/broker.sh`)"
        ),
    }
}

/// `url` with its virtual host replaced by `vhost` (a name that needs no escaping).
fn with_vhost(url: &str, vhost: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("not an AMQP URL: {url}"));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{vhost}{query}")
}

/// The user name in `url`, or RabbitMQ's default.
fn user_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo.split(':').next().unwrap_or("guest").to_owned(),
        None => "guest".to_owned(),
    }
}

/// Runs the sdist's tests against `side`'s server in `vhost`.
fn run_suite(python: &str, sdist: &Path, vhost: &Vhost, side: Side) -> Run {
    let plugin_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut python_path = vec![plugin_dir, sdist.join("src")];
    if let Some(outer) = std::env::var_os("PYTHONPATH") {
        python_path.extend(std::env::split_paths(&outer));
    }
    let mut command = Command::new(python);
    command
        .current_dir(sdist)
        .args(["-m", "pytest", "tests"])
        // The sdist's own configuration adds coverage options (pytest-cov).
        .args(["-o", "addopts=", "-p", "no:cacheprovider"])
        // Only the plugins named here: no coverage, timeout or other plugin of the machine.
        .env("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        .args(["-p", "pytest_asyncio.plugin"])
        .args([
            "-rfEsxXp",
            "--tb=short",
            "--durations=0",
            "--durations-min=0",
        ])
        .env("PYTHONPATH", std::env::join_paths(python_path).unwrap())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        // Wide enough that the short summary keeps the reasons whole.
        .env("COLUMNS", "400")
        .env("AMQP_URL", &vhost.url)
        // test_list_services compares with this literal; the virtual host isolates it.
        .env("SERVICE_DOMAIN", "some-domain")
        .env("SERVICE_ID", format!("conformance-{}", std::process::id()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for variable in SUITE_VARIABLES {
        command.env_remove(variable);
    }
    if side == Side::Rust {
        command.args(["-p", "fabric_conformance"]).env(
            "FABRIC_CONFORMANCE_PEER",
            env!("CARGO_BIN_EXE_conformance_peer"),
        );
    }

    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start pytest with {python}: {e}"));
    let (done_tx, done) = mpsc::channel();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = done_tx.send(text);
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Output ends when pytest does (the peers it started have their own pipes, and end
    // when pytest's end of them closes).
    let (mut output, timed_out) = match done.recv_timeout(RUN_TIMEOUT) {
        Ok(text) => (text, false),
        Err(_) => {
            let _ = child.kill();
            (done.recv().unwrap_or_default(), true)
        }
    };
    let status = child.wait().expect("wait for pytest");
    let errors = errors.join().unwrap_or_default();
    if !errors.trim().is_empty() {
        output.push_str("\n--- stderr ---\n");
        output.push_str(&errors);
    }
    assert!(
        !timed_out,
        "the suite against {side:?} did not end within {RUN_TIMEOUT:?}; killed\n{output}"
    );
    // 0: all passed; 1: some failed (read below). Anything else is pytest itself failing.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "pytest against {side:?} ended with {status}: it did not run the suite\n{output}"
    );
    parse(side, output, started.elapsed())
}

/// Reads pytest's short summary (`-r`), its durations and the plugin's lines.
fn parse(side: Side, output: String, took: Duration) -> Run {
    let mut run = Run {
        side,
        outcomes: BTreeMap::new(),
        durations: BTreeMap::new(),
        peers: BTreeMap::new(),
        output: String::new(),
        took,
    };
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix(PLUGIN_PREFIX) {
            if let Some((test, acts)) = rest.split_once(" | ") {
                run.peers.insert(test_name(test), acts.to_owned());
            }
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(seconds), Some("call"), Some(test)) if seconds.ends_with('s') => {
                if let Ok(seconds) = seconds.trim_end_matches('s').parse() {
                    run.durations.insert(test_name(test), seconds);
                }
                continue;
            }
            _ => {}
        }
        let Some((word, rest)) = line.split_once(' ') else {
            continue;
        };
        let (test, why) = match rest.split_once(" - ") {
            Some((test, why)) => (test, why.to_owned()),
            None => (rest, String::new()),
        };
        let outcome = match word {
            "PASSED" => Outcome::Passed,
            "FAILED" | "XPASS" => Outcome::Failed(why),
            "ERROR" => Outcome::Error(why),
            "SKIPPED" | "XFAIL" => Outcome::Skipped(why),
            _ => continue,
        };
        run.outcomes.insert(test_name(test), outcome);
    }
    run.output = output;
    run
}

/// `tests/test_x.py::test_y` as `test_x.py::test_y`.
fn test_name(node_id: &str) -> String {
    node_id
        .trim()
        .strip_prefix("tests/")
        .unwrap_or(node_id.trim())
        .to_owned()
}

/// Prints both runs side by side, then the counts per module.
fn report(baseline: &Run, rust: &Run) {
    println!("\namqp-fabric 0.2.3's own test suite, run against:");
    println!(
        "  {:<64} {:<22} Rust server (fabric)",
        "test", "amqp-fabric's server"
    );
    let cell = |run: &Run, test: &str| match run.durations.get(test) {
        Some(seconds) => format!("{} ({seconds:.2} s)", run.outcome(test)),
        None => run.outcome(test).to_string(),
    };
    for test in SUITE {
        println!(
            "  {test:<64} {:<22} {}",
            cell(baseline, test),
            cell(rust, test)
        );
    }
    println!("\nper module (passed / failed / excused):");
    let mut modules: Vec<&str> = SUITE.iter().map(|t| module_of(t)).collect();
    modules.dedup();
    for module in modules {
        let counts = |run: &Run| {
            let tests = SUITE.iter().filter(|t| module_of(t) == module);
            let passed = tests.clone().filter(|t| run.outcome(t).passed()).count();
            format!("{passed} / {} / 0", tests.count() - passed)
        };
        println!(
            "  {module:<34} {:?} server {:<12} {:?} server {}",
            baseline.side,
            counts(baseline),
            rust.side,
            counts(rust)
        );
    }
    println!(
        "\npasses against Python: {}/{n}, against Rust: {}/{n}; excused: none",
        baseline.passes(),
        rust.passes(),
        n = SUITE.len()
    );
    println!("\nwhat the Rust peers did:");
    for test in SUITE {
        let acts = rust.peers.get(test).map_or("nothing", String::as_str);
        println!("  {test}: {acts}");
    }
    println!();
}

fn module_of(test: &str) -> &str {
    test.split_once("::").map_or(test, |(module, _)| module)
}

#[test]
fn vhost_urls() {
    assert_eq!(
        with_vhost("amqp://guest:guest@127.0.0.1:5672/%2f", "v1"),
        "amqp://guest:guest@127.0.0.1:5672/v1"
    );
    assert_eq!(
        with_vhost("amqp://u:p@host?heartbeat=5", "v1"),
        "amqp://u:p@host/v1?heartbeat=5"
    );
    assert_eq!(user_of("amqp://alice:secret@host:5672/%2f"), "alice");
    assert_eq!(user_of("amqp://host/"), "guest");
}
