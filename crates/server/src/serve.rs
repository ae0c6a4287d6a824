//! `kindling serve`: opens the state, builds the API and serves it until SIGINT/SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use axum::ServiceExt;
use axum::serve::ListenerExt;
use kindling_api::{ApiState, normalize_path, router};
use kindling_control::{ControlConfig, ControlPlane};
use kindling_model::ArnContext;
use kindling_store::{BlobStore, SqliteStore};
use tower::Layer;

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    validate(&args)?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let store = SqliteStore::open(&args.data_dir.join("state.db")).context("opening state")?;
    let blobs = BlobStore::open(args.data_dir.join("code")).context("opening code store")?;
    let control = Arc::new(ControlPlane::new(
        Arc::new(store),
        blobs,
        ControlConfig {
            arn: ArnContext::new(&args.region, &args.account_id),
            account_concurrency: args.account_concurrency,
            min_unreserved_concurrency: args.min_unreserved_concurrency,
        },
    ));
    let app = router(ApiState { control });
    let app = tower::util::MapRequestLayer::new(normalize_path).layer(app);

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "could not set TCP_NODELAY");
        }
    });
    tracing::info!(
        "Kindling listening on http://{addr} (data dir {}, region {}, account {})",
        args.data_dir.display(),
        args.region,
        args.account_id
    );
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("Kindling stopped");
    Ok(())
}

fn validate(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.account_id.len() == 12 && args.account_id.bytes().all(|b| b.is_ascii_digit()),
        "--account-id must be 12 digits, got {:?}",
        args.account_id
    );
    anyhow::ensure!(
        args.min_unreserved_concurrency <= args.account_concurrency,
        "--min-unreserved-concurrency exceeds --account-concurrency"
    );
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
