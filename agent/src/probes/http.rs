//! One HTTP/1.1 GET over a fresh connection (TLS with the host's trust store for `https`), with
//! a bounded body. Enough for health checks and PromQL queries; not a general HTTP client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rampart_proto::v1::{HttpProbe, ProbeResult};

/// The most of a response body kept (health pages are small; PromQL answers to one instant
/// query too).
pub const MAX_BODY: usize = 1024 * 1024;

/// What a GET saw.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

/// GETs `url` within `timeout` (connecting, TLS, headers and body together).
pub async fn get(url: &str, timeout: Duration) -> Result<Response, String> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, get_inner(url)).await {
        Ok(Ok((status, body))) => Ok(Response {
            status,
            body,
            elapsed: started.elapsed(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer from {url} within {timeout:?}")),
    }
}

/// Splits a URL into (https?, host, port, path and query).
pub fn parse(url: &str) -> Result<(bool, String, u16, String), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "{url:?}: only http:// and https:// URLs can be probed"
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("{url:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    Ok((tls, host, port, path))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        })
        .clone()
}

async fn get_inner(url: &str) -> Result<(u16, Vec<u8>), String> {
    let (tls, host, port, path) = parse(url)?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("{host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let authority = if port == 80 || port == 443 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, "rampart-probe")
        .header(http::header::CONNECTION, "close")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("{host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
        send(TokioIo::new(stream), request).await
    } else {
        send(TokioIo::new(tcp), request).await
    }
}

async fn send<IO>(
    io: IO,
    request: http::Request<http_body_util::Empty<bytes::Bytes>>,
) -> Result<(u16, Vec<u8>), String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string());
    let result = async {
        let response = response?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Some(data) = frame.data_ref() {
                let room = MAX_BODY.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
                if kept.len() >= MAX_BODY {
                    break;
                }
            }
        }
        Ok((status, kept))
    }
    .await;
    conn.abort();
    result
}

/// The HTTP probe: status as expected, and fast enough.
pub async fn probe(p: &HttpProbe) -> ProbeResult {
    let started = Instant::now();
    let latency = |started: Instant| started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    match get(&p.url, super::timeout(p.timeout_ms)).await {
        Ok(r) => {
            let status_ok = if p.status == 0 {
                (200..300).contains(&r.status)
            } else {
                u32::from(r.status) == p.status
            };
            let ms = r.elapsed.as_millis();
            let fast = p.max_latency_ms == 0 || ms <= u128::from(p.max_latency_ms);
            let mut detail = format!("{} in {ms} ms", r.status);
            if !status_ok {
                let want = if p.status == 0 {
                    "2xx".to_string()
                } else {
                    p.status.to_string()
                };
                detail.push_str(&format!(" (expected {want})"));
            }
            if !fast {
                detail.push_str(&format!(" (slower than {} ms)", p.max_latency_ms));
            }
            ProbeResult {
                ok: status_ok && fast,
                detail,
                latency_micros: latency(started),
            }
        }
        Err(e) => ProbeResult {
            ok: false,
            detail: e,
            latency_micros: latency(started),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers every connection with `reply` after `delay`.
    async fn server(reply: &'static str, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/health?x=1")
    }

    #[tokio::test]
    async fn status_latency_and_failures_are_told_apart() {
        let ok = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            Duration::ZERO,
        )
        .await;
        let r = get(&ok, Duration::from_secs(2)).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"ok".as_slice()));
        let p = HttpProbe {
            url: ok.clone(),
            status: 200,
            max_latency_ms: 1000,
            timeout_ms: 2000,
        };
        assert!(probe(&p).await.ok);
        let wrong = probe(&HttpProbe {
            status: 204,
            ..p.clone()
        })
        .await;
        assert!(
            !wrong.ok && wrong.detail.contains("expected 204"),
            "{}",
            wrong.detail
        );

        let down = server(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
            Duration::ZERO,
        )
        .await;
        let r = probe(&HttpProbe {
            url: down,
            ..p.clone()
        })
        .await;
        assert!(!r.ok && r.detail.starts_with("503"), "{}", r.detail);

        let slow = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            Duration::from_millis(300),
        )
        .await;
        let r = probe(&HttpProbe {
            url: slow.clone(),
            max_latency_ms: 100,
            ..p.clone()
        })
        .await;
        assert!(
            !r.ok && r.detail.contains("slower than 100 ms"),
            "{}",
            r.detail
        );
        let r = probe(&HttpProbe {
            url: slow,
            max_latency_ms: 0,
            timeout_ms: 100,
            ..p.clone()
        })
        .await;
        assert!(!r.ok && r.detail.contains("within"), "{}", r.detail);
    }

    #[test]
    fn urls_parse() {
        assert_eq!(
            parse("http://198.18.6.1:8080/health").unwrap(),
            (false, "198.18.6.1".into(), 8080, "/health".into())
        );
        assert_eq!(
            parse("https://example.org").unwrap(),
            (true, "example.org".into(), 443, "/".into())
        );
        assert_eq!(parse("http://[::1]:9/x").unwrap().1, "::1");
        assert!(parse("ftp://x/").is_err());
        assert!(parse("not a url").is_err());
    }
}
