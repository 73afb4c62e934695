//! A TCP proxy on 127.0.0.1 between a fabric and a broker, that a test can freeze (stop
//! forwarding while every socket stays open: a silent link, as a dead network path looks to
//! both ends) or sever (close every connection through it at once).
//!
//! Plain std threads: one accepting, two per connection pumping bytes each way. Every loop
//! wakes at least every [`TICK`] to see whether it should stop, so dropping the proxy ends
//! all its threads within about a tick.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the proxy's threads look at their flags when idle or frozen.
const TICK: Duration = Duration::from_millis(20);
/// At most this many connections at once, so a runaway reconnect loop stays bounded.
const MAX_CONNECTIONS: usize = 64;

/// A running proxy; dropping it closes every connection and ends its threads.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    frozen: AtomicBool,
    stopped: AtomicBool,
    accepted: AtomicUsize,
    /// Every live connection's two sockets, to sever them.
    connections: Mutex<Vec<(TcpStream, TcpStream)>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 forwarding to `upstream_port` there.
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("a bound port").port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port)),
            frozen: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("test-proxy-accept".into())
            .spawn(move || accept(listener, &accepting))
            .expect("start the proxy");
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// An AMQP URL (guest/guest, default vhost) that goes through the proxy.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops forwarding in both directions; sockets stay open and new connections are
    /// accepted but get no answer.
    pub fn freeze(&self) {
        self.shared.frozen.store(true, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn thaw(&self) {
        self.shared.frozen.store(false, Ordering::SeqCst);
    }

    /// Closes every connection through the proxy now, as a broken network would; new ones
    /// are accepted as before.
    pub fn sever(&self) {
        for (client, server) in self.shared.connections.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }

    /// How many connections the proxy has accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.sever();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let pumps: Vec<_> = self.shared.pumps.lock().unwrap().drain(..).collect();
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

fn accept(listener: TcpListener, shared: &Arc<Shared>) {
    while !shared.stopped.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            // No sleep-free way to wait on a listener and a flag with std alone.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(TICK);
                continue;
            }
            Err(_) => continue,
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let live = shared.connections.lock().unwrap().len();
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
        else {
            continue;
        };
        if live >= MAX_CONNECTIONS {
            continue;
        }
        let _ = client.set_nonblocking(false);
        for stream in [&client, &server] {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(TICK));
        }
        let (Ok(client_copy), Ok(server_copy)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        shared
            .connections
            .lock()
            .unwrap()
            .push((client_copy, server_copy));
        let (Ok(client_in), Ok(server_in)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let mut pumps = shared.pumps.lock().unwrap();
        pumps.retain(|pump| !pump.is_finished());
        for (from, to) in [(client_in, server), (server_in, client)] {
            let pumping = Arc::clone(shared);
            pumps.push(
                std::thread::Builder::new()
                    .name("test-proxy-pump".into())
                    .spawn(move || pump(from, to, &pumping))
                    .expect("start a proxy pump"),
            );
        }
    }
}

/// Copies bytes from `from` to `to` until either side closes or the proxy stops; while
/// frozen it reads nothing, so nothing moves and nobody is told.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let mut buffer = vec![0u8; 64 * 1024];
    while !shared.stopped.load(Ordering::SeqCst) {
        if shared.frozen.load(Ordering::SeqCst) {
            // Frozen: no event to wait for but the flag; look again after a tick.
            std::thread::sleep(TICK);
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
