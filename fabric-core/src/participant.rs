//! What the features need of the fabric they work for, and nothing more: the connection, who
//! the participant is and its settings, and a hold that keeps the fabric open.
//!
//! Features take this, never the [`Fabric`](crate::Fabric) itself, so that the layers point
//! one way: the fabric handle (top) wires the features, which use this and the broker layer.

use std::sync::Arc;

use crate::address::ServiceAddress;
use crate::broker::hold::Hold;
use crate::broker::link::Link;
use crate::config::FabricConfig;

/// One participant's connection, address and settings, as the features see them; cheap to
/// clone.
#[derive(Clone)]
pub(crate) struct Participant {
    link: Arc<Link>,
    address: Arc<ServiceAddress>,
    config: Arc<FabricConfig>,
    hold: Hold,
}

impl std::fmt::Debug for Participant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Participant")
            .field("address", &self.address.fqn())
            .finish_non_exhaustive()
    }
}

impl Participant {
    pub(crate) fn new(
        link: Arc<Link>,
        address: Arc<ServiceAddress>,
        config: Arc<FabricConfig>,
        hold: Hold,
    ) -> Participant {
        Participant {
            link,
            address,
            config,
            hold,
        }
    }

    /// The connection, kept up across reconnections.
    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Who this participant is: where its servers answer.
    pub(crate) fn address(&self) -> &ServiceAddress {
        &self.address
    }

    /// The settings it was connected with.
    pub(crate) fn config(&self) -> &FabricConfig {
        &self.config
    }

    /// A hold on the fabric, for a handle that must keep it open.
    pub(crate) fn hold(&self) -> Hold {
        self.hold.clone()
    }
}
