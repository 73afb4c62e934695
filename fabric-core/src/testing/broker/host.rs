//! What a test node needs from the machine: free ports, probes of a listener, the start
//! script, its child process, and the directories of nodes whose test process died.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The default broker's port, which a test node must never use.
const MAIN_PORT: u16 = 5672;

/// The number of the next node or scratch directory of this process.
pub(super) fn next_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh directory of this test process's own under the system's temp dir (for the
/// certificates a TLS node is started with, say), named like a node's so that a later
/// [`TestBroker::start`](super::TestBroker::start) removes it once this process is gone.
///
/// # Panics
///
/// If the directory cannot be created.
pub fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fabric-test-{}-{}",
        std::process::id(),
        next_number()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Removes the directories of private nodes whose test process died without dropping them
/// (its node stopped then, with the process). Only where `/proc` tells which processes live.
pub(super) fn sweep_stale_dirs() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((pid, n)) = name
            .strip_prefix("fabric-test-")
            .and_then(|rest| rest.split_once('-'))
        else {
            continue;
        };
        let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if numeric(pid) && numeric(n) && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The RabbitMQ start script to run.
pub(super) fn server_script() -> PathBuf {
    if let Some(script) = std::env::var_os("FABRIC_TEST_RABBITMQ_SERVER") {
        let script = PathBuf::from(script);
        assert!(
            script.exists(),
            "FABRIC_TEST_RABBITMQ_SERVER names {}, which does not exist: point it at a \
             rabbitmq-server start script, or unset it to use the installed RabbitMQ",
            script.display()
        );
        return script;
    }
    // The Debian package's /usr/sbin/rabbitmq-server switches to the rabbitmq user and its
    // directories; the script it wraps takes our environment as it is.
    let debian = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if debian.exists() {
        return debian;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("rabbitmq-server"))
        .find(|candidate| candidate.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "TestBroker needs RabbitMQ, and rabbitmq-server was not found (in \
             /usr/lib/rabbitmq/bin or on the PATH). Install it: on Debian or Ubuntu \
             `sudo apt-get install rabbitmq-server` (then `sudo systemctl disable --now \
             rabbitmq-server` if no system broker is wanted; TestBroker runs nodes of its own), \
             on macOS `brew install rabbitmq`, elsewhere see \
             https://www.rabbitmq.com/docs/download; or set FABRIC_TEST_RABBITMQ_SERVER to \
             the path of a rabbitmq-server start script"
        )
    })
}

/// A port nobody listens on now (the kernel's pick), never the main broker's.
pub(super) fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        let port = listener.local_addr().expect("a bound port").port();
        if port != MAIN_PORT {
            return port;
        }
    }
}

fn address(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub(super) fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&address(port), Duration::from_millis(500)).is_ok()
}

/// Whether an AMQP 0-9-1 server answers on `port`: it replies to the protocol header with
/// a method frame (type 1) on channel 0, `connection.start`.
pub(super) fn speaks_amqp(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address(port), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut frame = [0u8; 3];
    stream.write_all(b"AMQP\x00\x00\x09\x01").is_ok()
        && stream.read_exact(&mut frame).is_ok()
        && frame == [1, 0, 0]
}

pub(super) fn wait_for_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() > deadline => return false,
            // Short: a test that kills a node measures from when it is gone.
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
