//! `herald serve`: bind, start the engine thread and the watcher, serve HTTP, and handle
//! signals (SIGTERM/SIGINT stop, SIGHUP reloads the config). Glue only.

use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};

use crate::config::{Config, MetricsAt, Overrides};
use crate::serve::engine::Engine;
use crate::serve::events::Msg;
use crate::serve::http::routes::{App, Serves};
use crate::serve::http::server::{self, Limits};
use crate::serve::metrics::Metrics;
use crate::serve::{mirror, systemd, watch, websub};

pub fn run(cfg: Config, overrides: Overrides) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("herald-http")
        .build()
        .context("failed to start the async runtime")?;
    rt.block_on(serve(cfg, overrides))
}

/// Socket-activated listeners when systemd passes them, else `server.listen`/`--listen`.
fn listeners(cfg: &Config) -> anyhow::Result<Vec<tokio::net::TcpListener>> {
    let activated =
        systemd::activated_listeners().context("failed to take sockets from LISTEN_FDS")?;
    let std_listeners = if !activated.is_empty() {
        activated
    } else {
        let mut out = Vec::new();
        for addr in &cfg.server.listen {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("failed to listen on {addr}"))?;
            l.set_nonblocking(true)?;
            out.push(l);
        }
        out
    };
    let mut out = Vec::new();
    for l in std_listeners {
        let l = tokio::net::TcpListener::from_std(l)?;
        info!(addr = %l.local_addr()?, "listening");
        out.push(l);
    }
    if out.is_empty() {
        anyhow::bail!("nothing to listen on: set server.listen or --listen");
    }
    Ok(out)
}

/// What acts on each publish, from the first one on: WebSub (a feed changed while herald
/// was down is pushed on start) and the mirror to object storage (what changed while
/// herald was down is known from the state). Returns where the engine sends each
/// publish, and the built-in hub.
fn after_publish(
    cfg: &Arc<Config>,
    metrics: &Arc<Metrics>,
    site: &tokio::sync::watch::Receiver<Option<Arc<crate::serve::snapshot::Snapshot>>>,
) -> anyhow::Result<(
    Vec<crate::serve::events::PublishedTx>,
    Option<Arc<websub::Hub>>,
)> {
    let websub = websub::start(cfg, metrics, site.clone()).context("failed to start WebSub")?;
    let (mut on_publish, hub) = match websub {
        Some(w) => (vec![w.tx], w.hub),
        None => (Vec::new(), None),
    };
    on_publish
        .extend(mirror::start(cfg, metrics).context("failed to start publishing to [publish] to")?);
    Ok((on_publish, hub))
}

async fn serve(cfg: Config, overrides: Overrides) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let (site_tx, site_rx) = tokio::sync::watch::channel(None);
    let listeners = listeners(&cfg)?;
    let limits = Limits::from_config(&cfg.server);

    let (engine_tx, engine_rx) = std::sync::mpsc::channel::<Msg>();
    let engine_cfg = Arc::new(cfg.clone());
    let engine_metrics = metrics.clone();
    let (on_publish, hub) = after_publish(&engine_cfg, &metrics, &site_rx)?;
    let engine = std::thread::Builder::new()
        .name("herald-engine".into())
        .spawn(move || {
            let mut engine = Engine::new(engine_cfg, engine_metrics, site_tx);
            for tx in on_publish {
                engine.on_publish(tx);
            }
            engine.start();
            engine.run(engine_rx);
        })?;

    let app = Arc::new(App {
        site: site_rx.clone(),
        metrics: metrics.clone(),
        serves: Serves::Site {
            metrics: cfg.server.metrics == MetricsAt::Main,
        },
        hub,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut http = vec![tokio::spawn(server::run(
        listeners,
        app,
        limits.clone(),
        stopped(stop_rx.clone()),
    ))];
    if let MetricsAt::Listen(addr) = cfg.server.metrics {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("failed to listen on {addr} (metrics_listen)"))?;
        info!(metrics_addr = %l.local_addr()?, "serving /metrics");
        let app = Arc::new(App {
            site: site_rx.clone(),
            metrics: metrics.clone(),
            serves: Serves::Metrics,
            hub: None,
        });
        http.push(tokio::spawn(server::run(
            vec![l],
            app,
            limits,
            stopped(stop_rx),
        )));
    }

    // READY=1 once the first index is published and the listeners accept.
    let mut ready_rx = site_rx.clone();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::select! {
        r = ready_rx.wait_for(|s| s.is_some()) => {
            if let Ok(s) = r {
                let s = s.as_ref().map(|s| (s.articles, s.feeds)).unwrap_or_default();
                info!(articles = s.0, feeds = s.1, "ready");
                systemd::ready(&format!("{} articles, {} feeds", s.0, s.1));
            }
        }
        _ = term.recv() => return stop(engine_tx, engine, stop_tx, http).await,
        _ = int.recv() => return stop(engine_tx, engine, stop_tx, http).await,
    }
    // Watching starts after the first index: inotify reports every open, so watching while
    // the initial scan opens every file would flood (and overflow) the event queue. Nothing
    // is missed: each watch setup is followed by a rescan that compares every file's stamp.
    let mut watcher = watch::spawn(&cfg, engine_tx.clone(), metrics.clone());

    let mut current = cfg;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                info!("SIGHUP: reloading the config");
                systemd::reloading();
                match Config::load(&overrides) {
                    Ok(new) => {
                        let rewatch = new.content_dir != current.content_dir || new.watch != current.watch;
                        if new.publish != current.publish {
                            warn!("[publish] settings take effect after a restart");
                        }
                        if new.websub != current.websub {
                            warn!("[websub] settings take effect after a restart");
                        }
                        if new.server != current.server {
                            warn!("[server] settings other than max_age take effect after a restart");
                        }
                        current = new.clone();
                        if engine_tx.send(Msg::Reload(Box::new(new))).is_err() {
                            error!("engine stopped; exiting");
                            break;
                        }
                        if rewatch {
                            drop(watcher);
                            watcher = watch::spawn(&current, engine_tx.clone(), metrics.clone());
                        }
                    }
                    Err(e) => {
                        error!(error = format!("{e:#}"), "invalid config; keeping the old one");
                        // The old config keeps serving: the reload is over.
                        systemd::ready("reload failed: invalid config; still serving the old one");
                    }
                }
            }
        }
    }
    drop(watcher);
    stop(engine_tx, engine, stop_tx, http).await
}

async fn stop(
    engine_tx: std::sync::mpsc::Sender<Msg>,
    engine: std::thread::JoinHandle<()>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    http: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    info!("shutting down");
    systemd::stopping();
    let _ = stop_tx.send(true);
    for h in http {
        let _ = h.await;
    }
    let _ = engine_tx.send(Msg::Shutdown);
    let _ = tokio::task::spawn_blocking(move || engine.join()).await;
    info!("stopped");
    Ok(())
}
