//! The client certificate a TLS connection presented, handed to every request on it: the
//! acceptor wraps axum-server's TLS acceptor, reads the leaf certificate once the handshake is
//! done and adds its fingerprint to the connection's service as a request extension.

use axum_server::accept::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use tokio_rustls::server::TlsStream;
use tower::Layer;
use tower_http::add_extension::{AddExtension, AddExtensionLayer};

/// The SHA-256 fingerprint (lower-case hex) of the certificate the connection presented.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<Arc<str>>);

#[derive(Clone)]
pub struct PeerCertAcceptor<A> {
    inner: A,
}

impl<A> PeerCertAcceptor<A> {
    pub fn new(inner: A) -> Self {
        PeerCertAcceptor { inner }
    }
}

impl<A, I, S, T> Accept<I, S> for PeerCertAcceptor<A>
where
    A: Accept<I, S, Stream = TlsStream<T>> + Clone + Send + 'static,
    A::Future: Send + 'static,
    A::Service: Send + 'static,
    T: Send + 'static,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = TlsStream<T>;
    type Service = AddExtension<A::Service, PeerCertificate>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let handshake = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let fingerprint = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| crate::crypto::x509::fingerprint(leaf.as_ref()).into());
            let service = AddExtensionLayer::new(PeerCertificate(fingerprint)).layer(service);
            Ok((stream, service))
        })
    }
}
