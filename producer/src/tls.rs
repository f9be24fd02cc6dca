//! The ingest API over TLS (`ingest.tls_cert_file`, `ingest.tls_key_file`): rustls with the
//! `ring` provider, HTTP/1.1, each connection handshaken and served on a task of its own. With
//! TLS configured the API answers nothing in plain HTTP.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The server configuration of a PEM certificate chain and key, or what is wrong with them
/// (naming the key of the file at fault).
pub fn server_config(cert_file: &str, key_file: &str) -> Result<rustls::ServerConfig, String> {
    let read =
        |key: &str, file: &str| std::fs::read(file).map_err(|e| format!("ingest.{key}: cannot read {file}: {e}"));
    let cert_pem = read("tls_cert_file", cert_file)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ingest.tls_cert_file: {cert_file}: not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("ingest.tls_cert_file: {cert_file} holds no CERTIFICATE"));
    }
    let key_pem = read("tls_key_file", key_file)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| format!("ingest.tls_key_file: {key_file}: not PEM: {e}"))?
        .ok_or_else(|| format!("ingest.tls_key_file: {key_file} holds no private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("ingest TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("ingest.tls_key_file: does not fit ingest.tls_cert_file: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Serves `app` over TLS on `listener` until `shutdown`; connections in flight then get a few
/// seconds to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    cfg: rustls::ServerConfig,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "ingest: accept failed");
                    continue;
                }
            },
        };
        let (acceptor, app, stop) = (acceptor.clone(), app.clone(), shutdown.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %peer, error = %e, "ingest: TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let service = TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ =
        tokio::time::timeout(Duration::from_secs(6), async { while connections.join_next().await.is_some() {} }).await;
}
