//! The live page in a real browser: the `fabric-gateway` binary serves it on a free port
//! and Debian's headless Chromium loads it once for the whole file. The page must list the
//! test service and its methods, show the result of a call made through its form (the page's
//! `?call=` fills and submits the form), and show an event that went by; a screenshot is taken.
//!
//! Chromium is required: without it the test fails, saying how to install it
//! (`bash ci/chromium.sh`). It never skips.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{broker_url, connect, World, WAIT};
use fabric_core::{Codec, FabricConfig};
use fabric_gateway::GatewayConfig;

/// The gateway binary, stopped when dropped.
struct GatewayProcess {
    child: Child,
    address: String,
}

impl GatewayProcess {
    fn start(domain: &str) -> GatewayProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fabric-gateway"))
            .args(["--listen", "127.0.0.1:0", "--domain", domain])
            .env("FABRIC_URL", broker_url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fabric-gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the gateway's first line");
        let address = line
            .trim()
            .strip_prefix("fabric-gateway: listening on http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("the gateway did not say where it listens: {line:?}"))
            .to_owned();
        GatewayProcess { child, address }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over plain HTTP/1.1: the body.
fn http_get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to the gateway");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    response
}

/// Runs headless Chromium on `url`: the DOM after the page's scripts ran, and a screenshot
/// in `dir`. Bounded by `WAIT`.
fn chromium(url: &str, dir: &std::path::Path) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", dir.join("page.png").display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs Debian's headless Chromium (`chromium` on the PATH): {e}\n\
                 install it with `bash ci/chromium.sh` (apt-get install chromium)"
            )
        });
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        dom
    });
    let deadline = Instant::now() + WAIT;
    loop {
        if child.try_wait().expect("wait for chromium").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn the_page_lists_services_calls_a_method_and_shows_events() {
    let world = World::new("page", GatewayConfig::default());
    let domain = world.domain.clone();
    let gateway = GatewayProcess::start(&domain);

    // The gateway has heard the service when /services lists it.
    let deadline = Instant::now() + WAIT;
    while !http_get(&gateway.address, "/services").contains(&format!("{domain}/calc/c1")) {
        assert!(
            Instant::now() < deadline,
            "the gateway did not hear the service within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Events go by while the page is open: one every 100 ms until the browser is done.
    let publishing = Arc::new(AtomicBool::new(true));
    let publisher = {
        let publishing = publishing.clone();
        let fabric =
            connect(FabricConfig::new(&broker_url(), &domain, "shop", "s1").codec(Codec::Json));
        std::thread::spawn(move || {
            let mut n = 0;
            while publishing.load(Ordering::Relaxed) {
                n += 1;
                let _ = fabric.publish_event("order.placed", &serde_json::json!({"order": n}));
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let dir = std::env::temp_dir().join(format!("fabric-gateway-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!(
        "http://{}/?call={domain}/calc/c1/subtract&args=%7B%22minuend%22%3A42%2C%22subtrahend%22%3A23%7D\
         &events={domain}&topic=order.*&events_max=1",
        gateway.address
    );
    let dom = chromium(&url, &dir);
    publishing.store(false, Ordering::Relaxed);
    publisher.join().unwrap();

    assert!(
        dom.contains(&format!("data-service=\"{domain}/calc/c1\"")),
        "the page does not list the service:\n{dom}"
    );
    for method in ["subtract", "divide", "greet"] {
        assert!(
            dom.contains(&format!("data-method=\"{method}\"")),
            "no method {method}:\n{dom}"
        );
    }
    assert!(
        dom.contains("Subtracts `subtrahend` from `minuend`."),
        "the method's doc is not shown:\n{dom}"
    );
    assert!(
        dom.contains(r#"<pre id="result" class="ok">200 19</pre>"#),
        "the call through the form did not show its result:\n{dom}"
    );
    assert!(
        dom.contains("<li>order.placed {\"order\":"),
        "no event went by on the page:\n{dom}"
    );
    let png = std::fs::read(dir.join("page.png")).expect("chromium took no screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    assert!(
        png.len() > 5_000,
        "the screenshot is nearly empty: {} bytes",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
