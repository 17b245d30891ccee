//! Prometheus exposition shared by the coordinator and the agent: hand-written gauge and counter
//! families for values read at scrape time, the process's own figures, the rewrite of
//! OpenMetrics text (what `prometheus-client` writes) into the Prometheus text format that every
//! scraper and `promtool` read, and a small plain-HTTP listener that serves `GET /metrics` and
//! nothing else.

use std::convert::Infallible;
use std::fmt::Write;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label pairs of one series.
pub type Labels = Vec<(String, String)>;

/// Label pairs from string pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One gauge family, written by hand: values read at scrape time.
pub fn gauge(out: &mut String, name: &str, help: &str, rows: &[(Labels, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (l, v) in rows {
        let l: Vec<String> = l
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        if l.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

pub fn counter(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name}_total {help}.");
    let _ = writeln!(out, "# TYPE {name}_total counter");
    let _ = writeln!(out, "{name}_total {value}");
}

/// OpenMetrics text (what `prometheus-client` writes) as the Prometheus text format 0.0.4 that
/// every scraper and `promtool check metrics` read: a counter family is named with its `_total`
/// suffix, and the `# EOF` marker goes.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The process's own figures from /proc/self (the names every Prometheus client uses).
pub fn process(out: &mut String) {
    let page = 4096.0;
    let ticks = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r)
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // Fields after the command: state is 0, utime 11, stime 12, starttime 19, vsize 20, rss 21.
        counter(
            out,
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            (num(11) + num(12)) / ticks,
        );
        gauge(
            out,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            &[(Vec::new(), num(20))],
        );
        gauge(
            out,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            &[(Vec::new(), num(21) * page)],
        );
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("btime ")
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
            })
            .unwrap_or(0.0);
        gauge(
            out,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            &[(Vec::new(), boot + num(19) / ticks)],
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            out,
            "process_open_fds",
            "Number of open file descriptors",
            &[(Vec::new(), fds.count() as f64)],
        );
    }
    if let Ok((soft, _)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        gauge(
            out,
            "process_max_fds",
            "Maximum number of open file descriptors",
            &[(Vec::new(), soft as f64)],
        );
    }
}

/// A command kind's name for the `kind` label (`CollectFacts` → `collect_facts`).
pub fn command_kind(kind: &rampart_proto::v1::command::Kind) -> String {
    let debug = format!("{kind:?}");
    let variant = debug.split(['(', ' ', '{']).next().unwrap_or_default();
    let mut out = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What renders one scrape: the exposition text, or why it could not be made (logged; the
/// scraper gets 503).
pub type Render =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

async fn handle(
    req: Request<hyper::body::Incoming>,
    render: Render,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, ctype: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = ctype.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.uri().path() != "/metrics" {
        return Ok(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: only /metrics is served here\n".into(),
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".into(),
        ));
    }
    match render().await {
        Ok(text) => Ok(reply(StatusCode::OK, CONTENT_TYPE, text)),
        Err(err) => {
            warn!(%err, "metrics could not be rendered");
            Ok(reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "metrics are not available right now; see the log\n".into(),
            ))
        }
    }
}

/// Serves `GET /metrics` (plain HTTP/1) on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    render: Render,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    info!(addr = %bound, "metrics listening (plain HTTP, GET /metrics)");
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(err) => {
                        warn!(%err, "metrics listener could not accept");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let render = render.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(req, render.clone()));
                let conn = hyper::server::conn::http1::Builder::new()
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_their_total_suffix_and_eof_goes() {
        let om = "# HELP rampart_sweeps Sweeps.\n# TYPE rampart_sweeps counter\nrampart_sweeps_total 3\n# HELP rampart_x_seconds X.\n# TYPE rampart_x_seconds histogram\n# UNIT rampart_x_seconds seconds\nrampart_x_seconds_count 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP rampart_sweeps_total Sweeps.\n# TYPE rampart_sweeps_total counter\nrampart_sweeps_total 3\n# HELP rampart_x_seconds X.\n# TYPE rampart_x_seconds histogram\nrampart_x_seconds_count 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        gauge(
            &mut out,
            "m",
            "Help",
            &[(labels(&[("group", "a\"b\\c\nd")]), 1.0)],
        );
        assert!(out.contains("m{group=\"a\\\"b\\\\c\\nd\"} 1"), "{out}");
    }
}
