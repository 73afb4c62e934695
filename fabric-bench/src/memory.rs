//! Peak memory of a client with 64 calls in flight and of a server at its defaults, each in a
//! process of its own (this binary, started with `--role`), so one's memory is not the other's.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use fabric_core::{Fabric, FabricConfig};

use crate::{raw, EchoClient, EchoServer, Echoer, URL};

const IN_FLIGHT: usize = 64;
const PAYLOAD: usize = 16;

/// The peak resident set of this process, in KiB (Linux's VmHWM).
pub(crate) fn peak_rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

pub(crate) fn arg<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} is missing"));
    &args[at + 1]
}

/// Runs one side in this process: servers print `ready` and serve until stdin closes;
/// clients make their calls. Both then print their peak RSS in KiB.
pub fn run_role(role: &str, args: &[String]) {
    let domain = arg(args, "--domain");
    match role {
        "fabric-server" => {
            let fabric = Fabric::connect(FabricConfig::new(URL, domain, "echo", "mem")).unwrap();
            let server = EchoServer::new(Echoer).serve(&fabric).unwrap();
            serve_until_stdin_closes();
            drop(server);
        }
        "raw-server" => {
            let server = raw::RawServer::start(
                &format!("{domain}.rawmem::echo"),
                &raw::Shape::same_messages(),
            );
            serve_until_stdin_closes();
            drop(server);
        }
        "fabric-client" => {
            let calls: usize = arg(args, "--calls").parse().unwrap();
            let fabric = Fabric::connect(FabricConfig::new(URL, domain, "caller", "mem")).unwrap();
            let client = EchoClient::connect(&fabric, domain, "echo", "mem").unwrap();
            crate::threaded_fabric(&client, &[1u8; PAYLOAD], calls, IN_FLIGHT);
        }
        "raw-client" => {
            let calls: usize = arg(args, "--calls").parse().unwrap();
            raw::pipelined_calls(
                &format!("{domain}.rawmem::echo"),
                &[1u8; PAYLOAD],
                calls,
                IN_FLIGHT,
                &raw::Shape::same_messages(),
            );
        }
        other => panic!("unknown role {other}"),
    }
    println!("{}", peak_rss_kib());
}

pub(crate) fn serve_until_stdin_closes() {
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    while std::io::stdin()
        .read_line(&mut sink)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}

/// Peak RSS in KiB of each side, raw and fabric: (figure, raw, fabric).
pub fn measure(domain: &str, calls: usize) -> Vec<(String, f64, f64)> {
    let mut peaks = [[0.0; 2]; 2];
    for (column, side) in ["raw", "fabric"].into_iter().enumerate() {
        let exe = std::env::current_exe().unwrap();
        let mut server = Command::new(&exe)
            .args(["--role", &format!("{side}-server"), "--domain", domain])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server_out = BufReader::new(server.stdout.take().unwrap()).lines();
        assert_eq!(server_out.next().unwrap().unwrap(), "ready");
        let client = Command::new(&exe)
            .args([
                "--role",
                &format!("{side}-client"),
                "--domain",
                domain,
                "--calls",
                &calls.to_string(),
            ])
            .output()
            .unwrap();
        assert!(client.status.success(), "the {side} client failed");
        peaks[0][column] = String::from_utf8_lossy(&client.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        drop(server.stdin.take());
        peaks[1][column] = server_out
            .next()
            .unwrap()
            .unwrap()
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        server.wait().unwrap();
    }
    vec![
        (
            format!("client, {IN_FLIGHT} calls in flight"),
            peaks[0][0],
            peaks[0][1],
        ),
        (
            "server at its defaults".to_owned(),
            peaks[1][0],
            peaks[1][1],
        ),
    ]
}
