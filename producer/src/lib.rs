//! The producer side of acd-bridge: ACD data in, Avro records on Kafka out.
//!
//! Layout:
//! - [`publisher`]: encodes records and publishes a batch, answering only once Kafka has
//!   acknowledged every record (idempotent producer, `acks=all`), or not at all within a deadline.
//! - [`ingest`]: the push-ingest HTTP API (docs/push-api.md): auth, content type, size limit,
//!   whole-request validation, `202` after the acknowledgement.
//! - [`readiness`]: whether Kafka answers, for `/readyz` and the connectors.
//! - [`status`]: each connector's connection state on `topics.connector_status`.
//! - [`simulator`]: a deterministic contact-center traffic generator, and [`connectors`] that
//!   run it (and later the ACD connectors) through the same publisher.
//!
//! Nothing here decides what a record means downstream; validation stops at the contract.

pub mod connectors;
pub mod ingest;
pub mod publisher;
pub mod readiness;
pub mod simulator;
pub mod status;
pub mod tls;

use std::sync::Arc;

use acd_core::{config::Config, metrics::Registry};
use tokio_util::sync::CancellationToken;

/// Errors that stop `produce`.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error(transparent)]
    Kafka(#[from] acd_core::kafka::KafkaError),
    #[error("ingest listener {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("configuration: {0}")]
    Tls(String),
}

/// Runs `acd-bridge produce` until `shutdown`: creates the topics, serves the ingest API and
/// runs the configured connectors.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), ProducerError> {
    // A certificate or key that cannot be used is said before anything else happens.
    if !cfg.ingest.tls_cert_file.is_empty() {
        tls::server_config(&cfg.ingest.tls_cert_file, &cfg.ingest.tls_key_file).map_err(ProducerError::Tls)?;
    }
    let listener = tokio::net::TcpListener::bind(&cfg.ingest.listen)
        .await
        .map_err(|source| ProducerError::Listen { addr: cfg.ingest.listen.clone(), source })?;
    serve(cfg, listener, shutdown).await
}

/// [`run`] on a listener the caller bound (the demo and tests bind port 0).
pub async fn serve(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ProducerError> {
    let tls = match cfg.ingest.tls_cert_file.is_empty() {
        true => None,
        false => {
            Some(tls::server_config(&cfg.ingest.tls_cert_file, &cfg.ingest.tls_key_file).map_err(ProducerError::Tls)?)
        }
    };
    let metrics = Registry::default();
    acd_core::kafka::ensure_topics(&cfg, &cfg.topics.inputs()).await?;
    let link = acd_core::link::KafkaLink::new(&metrics);
    let publisher = Arc::new(publisher::Publisher::new(&cfg, metrics.clone(), link).await?);
    let ready = readiness::spawn(publisher.clone(), metrics.clone(), shutdown.clone());
    tracing::info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        tls = tls.is_some(),
        "ingest API listening"
    );
    let statuses = status::Statuses::default();
    // The status reporter outlives the connectors, so that their last word is published.
    let reporter_stop = CancellationToken::new();
    let reporter = status::spawn(statuses.clone(), publisher.clone(), reporter_stop.clone());
    let connectors = connectors::spawn(&cfg, publisher.clone(), statuses.clone(), shutdown.clone());
    let app = ingest::router(ingest::IngestState::new(&cfg, publisher.clone(), ready, metrics, statuses));
    match tls {
        Some(tls) => tls::serve(listener, app, tls, shutdown.clone()).await,
        None => {
            let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "ingest server failed");
            }
        }
    }
    for c in connectors {
        let _ = c.await;
    }
    reporter_stop.cancel();
    let _ = reporter.await;
    publisher.flush().await;
    Ok(())
}
