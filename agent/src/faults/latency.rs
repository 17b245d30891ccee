//! Latency without netem: locally originated TCP connections to the named destination ports are
//! redirected (an nftables `nat` chain on the output hook, in Rampart's table) to a proxy inside
//! the agent. The proxy reads the original destination (`SO_ORIGINAL_DST`), connects to it with a
//! socket marked `0x5241` (which the redirect skips), and forwards; what the host sends is held
//! back by the delay (± jitter) before it goes out, as netem on the egress would, so a round trip
//! grows by the delay. Loopback destinations and the coordinator session are never redirected.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use rampart_proto::v1::NetworkLatency;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::journal::Undo;
use super::network::{self, MARK, TABLE};

pub struct Proxy {
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn start(
    fault_id: &str,
    l: &NetworkLatency,
    coordinator: &[SocketAddr],
    journal: impl FnOnce(&Undo) -> Result<(), String>,
) -> Result<(Undo, Proxy, String), String> {
    if l.ports.iter().any(|p| *p == 0 || *p > 65535) {
        return Err("ports must be between 1 and 65535".into());
    }
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot start the latency proxy: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("latency proxy: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let chain = network::chain("lat", fault_id);
    let ports: Vec<String> = l.ports.iter().map(u32::to_string).collect();
    let mut script = format!(
        "add table inet {TABLE}\n\
         add chain inet {TABLE} {chain} {{ type nat hook output priority -100; policy accept; }}\n\
         add rule inet {TABLE} {chain} meta mark {MARK:#x} return comment \"rampart:{fault_id} proxy\"\n\
         add rule inet {TABLE} {chain} ip daddr 127.0.0.0/8 return comment \"rampart:{fault_id} loopback\"\n"
    );
    for a in coordinator.iter().filter(|a| a.is_ipv4()) {
        script.push_str(&format!(
            "add rule inet {TABLE} {chain} ip daddr {} tcp dport {} return comment \"rampart:{fault_id} coordinator\"\n",
            a.ip(),
            a.port()
        ));
    }
    script.push_str(&format!(
        "add rule inet {TABLE} {chain} meta nfproto ipv4 tcp dport {{ {} }} redirect to :{port} comment \"rampart:{fault_id}\"\n",
        ports.join(", ")
    ));
    let undo = Undo::NftChains {
        chains: vec![chain.clone()],
    };
    journal(&undo)?;
    let cancel = CancellationToken::new();
    let (delay, jitter) = (
        Duration::from_millis(u64::from(l.delay_ms)),
        Duration::from_millis(u64::from(l.jitter_ms)),
    );
    let c = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("rampart-latency".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(serve(listener, delay, jitter, c));
        })
        .map_err(|e| format!("cannot start the latency proxy: {e}"))?;
    let proxy = Proxy {
        cancel,
        thread: Some(thread),
    };
    if let Err(e) = network::apply(&script, std::slice::from_ref(&chain)) {
        let mut p = proxy;
        let _ = super::Running::stop(&mut p);
        let _ = network::remove_chains(&[chain]);
        return Err(e);
    }
    Ok((
        undo,
        proxy,
        format!(
            "userspace latency (no netem): TCP to port(s) {} redirected by nftables chain {chain} to the agent's proxy on 127.0.0.1:{port}, which delays what the host sends by {} ms ± {} ms",
            ports.join(", "),
            l.delay_ms,
            l.jitter_ms
        ),
    ))
}

async fn serve(
    listener: std::net::TcpListener,
    delay: Duration,
    jitter: Duration,
    cancel: CancellationToken,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => {
                if let Ok((inbound, _)) = accepted {
                    let c = cancel.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = c.cancelled() => {}
                            r = relay(inbound, delay, jitter) => {
                                if let Err(e) = r {
                                    tracing::debug!(error = %e, "latency proxy connection ended");
                                }
                            }
                        }
                    });
                }
            }
        }
    }
}

fn original_destination(s: &tokio::net::TcpStream) -> std::io::Result<SocketAddr> {
    let sin = getsockopt(s, sockopt::OriginalDst).map_err(std::io::Error::from)?;
    Ok(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    )))
}

async fn relay(
    inbound: tokio::net::TcpStream,
    delay: Duration,
    jitter: Duration,
) -> std::io::Result<()> {
    let target = original_destination(&inbound)?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    setsockopt(&socket, sockopt::Mark, &MARK).map_err(std::io::Error::from)?;
    let upstream = socket.connect(target).await?;
    let _ = inbound.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    // What the host sends waits for the delay; answers come straight back.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(256);
    let reader = async move {
        let mut last = tokio::time::Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = in_read.read(&mut buf).await?;
            let spread = if jitter.is_zero() {
                Duration::ZERO
            } else {
                jitter.mul_f64(rand::random::<f64>() * 2.0)
            };
            // delay ± jitter, never reordering what was sent.
            let at = (tokio::time::Instant::now() + delay + spread)
                .checked_sub(jitter)
                .unwrap_or_else(tokio::time::Instant::now)
                .max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).await.is_err() || n == 0 {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    let writer = async move {
        while let Some((at, data)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if data.is_empty() {
                up_write.shutdown().await?;
                break;
            }
            up_write.write_all(&data).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let back = async move {
        tokio::io::copy(&mut up_read, &mut in_write).await?;
        in_write.shutdown().await
    };
    let (a, b, c) = tokio::join!(reader, writer, back);
    a.and(b).and(c)
}

impl super::Running for Proxy {
    fn stop(&mut self) -> Result<String, String> {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| "the latency proxy panicked".to_string())?;
        }
        Ok("latency proxy stopped".into())
    }
}
