//! `fabric-gateway`: the HTTP gateway as a program.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use fabric_core::parse_duration;
use fabric_core::{Codec, Fabric, FabricConfig};
use fabric_gateway::{Gateway, GatewayConfig};

/// An HTTP gateway in front of fabric (and amqp-fabric) services: JSON-RPC 2.0 at
/// /jsonrpc/DOMAIN/TYPE/ID, REST at /services/DOMAIN/TYPE/ID/METHOD, the live services at
/// /services, OpenAPI at /openapi.json, events at /events/DOMAIN, and a live page at /.
#[derive(Debug, Parser)]
#[command(name = "fabric-gateway", version)]
struct Args {
    /// The address to listen on. Only this machine by default: give 0.0.0.0:8080 (with a
    /// --token) to serve others.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The broker.
    #[arg(
        long,
        env = "FABRIC_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    url: String,
    /// The gateway's own domain (its events go there without another connection).
    #[arg(long, env = "FABRIC_DOMAIN", default_value = "fabric_gateway")]
    domain: String,
    /// Require `Authorization: Bearer TOKEN` on every route but the page.
    #[arg(long, env = "FABRIC_GATEWAY_TOKEN")]
    token: Option<String>,
    /// The timeout of a call that asks for none (500ms, 5s, 1m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// The longest timeout a request may ask for.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    max_timeout: Duration,
    /// The largest request body, in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: usize,
    /// Allow cross-origin requests from this origin (repeat for several, `*` for any). Off
    /// by default.
    #[arg(long)]
    cors_origin: Vec<String>,
    /// Calls in flight at once; more wait their turn.
    #[arg(long, default_value_t = 256)]
    max_calls: usize,
}

fn main() {
    let args = Args::parse();
    if let Err(message) = run(args) {
        eprintln!("fabric-gateway: {message}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let id = format!("gw-{}", std::process::id());
    let fabric = Fabric::connect(
        FabricConfig::new(&args.url, &args.domain, "fabric_gateway", &id)
            .codec(Codec::Json)
            .connect_timeout(Duration::from_secs(10))
            .keep_alive_listen(true),
    )
    .map_err(|e| e.to_string())?;
    let mut config = GatewayConfig::default()
        .default_timeout(args.timeout)
        .max_timeout(args.max_timeout)
        .max_body(args.max_body)
        .max_concurrent_calls(args.max_calls);
    if let Some(token) = &args.token {
        config = config.token(token);
    }
    for origin in &args.cors_origin {
        config = config.cors_origin(origin);
    }
    let router = Gateway::new(fabric, config).router();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // Scripts and tests read this line for the address (a port of 0 picks a free one).
        println!("fabric-gateway: listening on http://{local}/");
        let _ = std::io::stdout().flush();
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| format!("serving failed: {e}"))
    })
}
