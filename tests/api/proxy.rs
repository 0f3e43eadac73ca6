//! A fault-injecting TCP proxy between calscan and its database server: it
//! passes bytes through, and on command resets every connection (and
//! refuses new ones) or holds them open without passing anything, as a
//! dropped network does. The shared servers themselves are never touched.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass both ways.
    None,
    /// Every connection is closed, and new ones are closed at once.
    Reset,
    /// Connections stay open and nothing passes: the database is silent.
    Silent,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on 127.0.0.1 in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, watching) = watch::channel(Fault::None);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(relay(client, upstream, watching.clone()));
            }
        });
        Self { addr, fault, task }
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).unwrap();
        parsed.set_ip_host(self.addr.ip()).unwrap();
        parsed.set_port(Some(self.addr.port())).unwrap();
        parsed.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: passed through until a fault, then reset or held.
async fn relay(mut client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let current = *fault.borrow_and_update();
    if current != Fault::None {
        hold_or_reset(client, None, current, fault).await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let changed = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        changed = fault.wait_for(|f| *f != Fault::None) => changed.map(|f| *f),
    };
    if let Ok(now) = changed {
        hold_or_reset(client, Some(server), now, fault).await;
    }
}

/// Closes the connection at once, or keeps it open and silent until the
/// fault ends (then closes it: what was in flight is lost, as it would be).
async fn hold_or_reset(
    client: TcpStream,
    server: Option<TcpStream>,
    now: Fault,
    mut fault: watch::Receiver<Fault>,
) {
    if now == Fault::Silent {
        let _ = fault.wait_for(|f| *f != Fault::Silent).await;
    }
    drop(client);
    if let Some(mut server) = server {
        let _ = server.shutdown().await;
    }
}
