//! Calls `Multiplier` from another process: single calls, the service's own error, a timeout
//! override, and many threads sharing one client.
//!
//! Usage: `multiplier_client [DOMAIN]` (default `my_project`); `FABRIC_URL` names the broker.

use std::time::{Duration, Instant};

use fabric_core::{Error, Fabric, FabricConfig, ServiceFilter};
use fabric_examples::{broker_url, domain_arg, DivError, MultiplierClient};

fn main() -> anyhow::Result<()> {
    let domain = domain_arg();
    // Listening to keep-alives lets the client wait for a server that is still starting.
    let config =
        FabricConfig::new(&broker_url(), &domain, "client_app", "c1").keep_alive_listen(true);
    let fabric = Fabric::connect(config)?;
    let client = MultiplierClient::connect(&fabric, &domain, "server_app", "my_app")?;
    wait_for_server(&fabric, &client)?;

    println!("multiply(5, 7) = {}", client.multiply(5, 7)?);
    println!("divide(84, 2) = {:?}", client.divide(84, 2)?);
    // The service's own error arrives as a value, not as a transport failure.
    let refused: Result<i64, DivError> = client.divide(1, 0)?;
    println!("divide(1, 0) = {refused:?}");

    let fast = client.with_timeout(Duration::from_millis(500));
    println!(
        "multiply(6, 7) with a 500 ms timeout = {}",
        fast.multiply(6, 7)?
    );

    // One client, shared by many threads; every answer is checked.
    let started = Instant::now();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || -> fabric_core::Result<()> {
                for i in 0..100 {
                    assert_eq!(client.multiply(t, i)?, t * i);
                }
                Ok(())
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a caller thread panicked")?;
    }
    println!(
        "1600 calls from 16 threads, all answers right, in {:?}",
        started.elapsed()
    );
    Ok(())
}

/// The server may still be starting: if its health check finds nobody, wait (at most 30 s)
/// for its first keep-alive (the example server announces itself every second).
fn wait_for_server(fabric: &Fabric, client: &MultiplierClient) -> anyhow::Result<()> {
    let address = client.rpc().address();
    let events = fabric.service_events(&ServiceFilter::from(address))?;
    match client.health_check() {
        Err(Error::NoSuchService { .. }) => {
            println!("multiplier_client: waiting for {address} to start");
            // Its fabric announces itself on connecting; its methods come once it serves.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let event = events
                    .recv_timeout(left)?
                    .ok_or_else(|| anyhow::anyhow!("{address} did not start within 30 s"))?;
                let serves = event.info().methods.as_ref();
                if serves.is_some_and(|methods| methods.iter().any(|m| m == "multiply")) {
                    break;
                }
            }
            client.health_check()?;
            Ok(())
        }
        checked => Ok(checked.map(drop)?),
    }
}
