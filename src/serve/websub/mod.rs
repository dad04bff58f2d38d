//! WebSub (a W3C Recommendation): push instead of poll. Feeds advertise their hubs (the
//! renderers write the links, the publisher the `Link` headers); after each publish the
//! feeds whose bytes changed are pinged to the external hubs ([`ping`]) and delivered by the
//! built-in hub ([`hub`]) to its subscribers. Everything here runs on the async runtime and
//! never blocks publishing or serving: the engine only sends a [`Published`] down a channel.

pub mod guard;
pub mod hub;
pub mod ping;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::info;

use crate::config::Config;
use crate::serve::events::{Published, PublishedTx};
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::Snapshot;

pub use hub::Hub;

/// What `[websub]` started: where the engine sends each publish, and the built-in hub (for
/// `POST /websub`).
pub struct WebSub {
    pub tx: PublishedTx,
    pub hub: Option<Arc<Hub>>,
}

/// Starts the pinger and the hub `[websub]` asks for (none: nothing to start).
pub fn start(
    cfg: &Arc<Config>,
    metrics: &Arc<Metrics>,
    site: watch::Receiver<Option<Arc<Snapshot>>>,
) -> anyhow::Result<Option<WebSub>> {
    let w = &cfg.websub;
    if w.hubs.is_empty() && !w.builtin {
        return Ok(None);
    }
    // reqwest is built without a TLS crypto provider of its own: ring, once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pinger = if w.hubs.is_empty() {
        None
    } else {
        // The operator chose these hubs: no address guard.
        let client = client_builder().build()?;
        Some(ping::Pinger::start(&w.hubs, client, metrics.clone()))
    };
    let hub = if w.builtin {
        let client = client_builder()
            .dns_resolver(Arc::new(guard::GuardedResolver {
                allow_private: w.allow_private_callbacks,
            }))
            .build()?;
        Some(Hub::start(cfg.clone(), metrics.clone(), site, client))
    } else {
        None
    };
    info!(
        external_hubs = w.hubs.len(),
        builtin = w.builtin,
        "WebSub on"
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(dispatch(rx, pinger, hub.clone(), metrics.clone()));
    Ok(Some(WebSub { tx, hub }))
}

/// The one client settings of every outgoing WebSub request: no redirects (a redirect could
/// lead past the address guard), no proxy from the environment, timeouts.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(hub::TOTAL_TIMEOUT)
        .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION"), " (WebSub)"))
}

/// Hands each publish to the pinger and the hub.
async fn dispatch(
    mut rx: mpsc::UnboundedReceiver<Arc<Published>>,
    pinger: Option<ping::Pinger>,
    hub: Option<Arc<Hub>>,
    metrics: Arc<Metrics>,
) {
    while let Some(p) = rx.recv().await {
        if let Some(pinger) = &pinger {
            pinger.queue(&feeds_to_ping(&p), &metrics);
        }
        if let Some(hub) = &hub {
            hub.published(&p);
        }
    }
}

/// The URLs of the feeds a hub should hear about after `p`: those whose bytes changed.
/// (A start publishes every route as new; nobody can have subscribed to a feed that did not
/// exist, so new routes are pinged only after the start.)
fn feeds_to_ping(p: &Published) -> Vec<String> {
    let added = p.added.iter().filter(|_| p.generation > 1);
    p.changed
        .iter()
        .chain(added)
        .filter_map(|route| {
            let r = p.snapshot.get(route)?;
            r.kind.is_feed().then(|| route.clone())
        })
        .filter_map(|route| {
            let maker = p.snapshot.page_maker.as_ref()?;
            Some(maker.cfg.url(&route))
        })
        .collect()
}
