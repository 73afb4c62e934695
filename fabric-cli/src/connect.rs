//! How the command joins the broker: a participant of its own, never announced.

use std::time::Duration;

use fabric_core::{Codec, Fabric, FabricConfig};

use crate::failure::Failure;

/// How long to try to reach the broker before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects a participant `{domain}.fabric_cli.cli-{pid}` that speaks JSON; `listen` also
/// hears keep-alives. The command never announces itself.
pub fn fabric(url: &str, domain: &str, listen: bool) -> Result<Fabric, Failure> {
    let id = format!("cli-{}", std::process::id());
    let config = FabricConfig::new(url, domain, "fabric_cli", &id)
        .codec(Codec::Json)
        .connect_timeout(CONNECT_TIMEOUT)
        .keep_alive_listen(listen);
    Fabric::connect(config).map_err(Failure::from)
}

/// The domain of a command that lists services of any domain.
pub const ANY_DOMAIN: &str = "fabric_cli";
