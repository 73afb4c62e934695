//! fabric's metrics (its `metrics` feature) served to Prometheus: installs the Prometheus
//! exporter on 127.0.0.1, serves `Multiplier`, makes some calls and publishes some data, then
//! prints where to scrape and what fabric recorded, and keeps serving until Ctrl-C.
//!
//! Usage: `metrics_exporter [DOMAIN] [PORT]` (defaults `my_project` and 9898, or the port in
//! `METRICS_PORT`); `FABRIC_URL` names the broker. `METRICS_ONCE=1` exits after printing
//! instead of waiting for Ctrl-C.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Context;
use fabric_core::{Fabric, FabricConfig, Headers};
use fabric_examples::{
    broker_url, ctrl_c, domain_arg, DivError, Multiplier, MultiplierClient, MultiplierServer,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

struct Calculator;

impl Multiplier for Calculator {
    fn multiply(&self, x: i64, y: i64) -> i64 {
        x.wrapping_mul(y)
    }

    fn divide(&self, x: i64, y: i64) -> Result<i64, DivError> {
        x.checked_div(y).ok_or(if y == 0 {
            DivError::DivisionByZero
        } else {
            DivError::Overflow
        })
    }
}

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    let port: u16 = match std::env::args()
        .nth(2)
        .or_else(|| std::env::var("METRICS_PORT").ok())
    {
        Some(port) => port.parse().context("the port must be a number")?,
        None => 9898,
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));

    // Installed before fabric records anything, so the exporter also gets every metric's
    // help text and unit. Buckets turn the call durations into Prometheus histograms (the
    // exporter's default is a summary).
    PrometheusBuilder::new()
        .with_http_listener(address)
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ],
        )?
        .install()
        .with_context(|| format!("cannot serve metrics on {address}"))?;

    let url = broker_url();
    let server_fabric = Fabric::connect(FabricConfig::new(&url, &domain, "server_app", "my_app"))?;
    let server = MultiplierServer::new(Calculator)
        .workers(4)
        .serve(&server_fabric)?;
    let fabric = Fabric::connect(FabricConfig::new(&url, &domain, "client_app", "metrics"))?;
    let client = MultiplierClient::connect(&fabric, &domain, "server_app", "my_app")?;

    // Some of each outcome: values, and the service's own errors.
    for i in 0..20 {
        client.multiply(i, 3)?;
    }
    for (x, y) in [(84, 2), (1, 0), (i64::MIN, -1)] {
        let _ = client.divide(x, y)?;
    }
    // Data messages, each confirmed by the broker.
    for i in 0..5u8 {
        fabric.publish_data(&[i], &Headers::new())?.wait()?;
    }

    println!("metrics_exporter: scrape http://{address}/metrics");
    println!("metrics_exporter: fabric's metrics right now:");
    for line in scrape(address)?.lines() {
        if line.starts_with("fabric_") && !line.contains("_bucket{") {
            println!("  {line}");
        }
    }

    let once = std::env::var("METRICS_ONCE").is_ok_and(|v| !v.is_empty() && v != "0");
    if !once {
        println!(
            "metrics_exporter: serving {} (Ctrl-C to stop)",
            server.address()
        );
        ctrl_c()?.recv()?;
    }
    server.close()?;
    fabric.close()?;
    server_fabric.close()?;
    Ok(())
}

/// What the exporter serves at `/metrics`, read as Prometheus would (HTTP/1.0, one request).
fn scrape(address: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("the exporter's answer has no body")?;
    anyhow::ensure!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "the exporter answered {}",
        head.lines().next().unwrap_or_default()
    );
    Ok(body.to_owned())
}
