//! Running a hypothesis probe once from where the experiment says: the coordinator itself
//! (HTTP, TCP, PromQL), an agent (HTTP, TCP, allow-listed command, over its session), or a
//! target's streamed host metrics.

use std::time::{Duration, Instant};

use rampart_proto::v1::{ProbeResult, RunProbe, command, command_result, run_probe};

use super::spec::{Check, Probe};
use crate::fleet::Fleet;

/// Where one probe instance runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Coordinator,
    Agent { id: String, hostname: String },
}

impl Place {
    pub fn label(&self) -> &str {
        match self {
            Place::Coordinator => "coordinator",
            Place::Agent { hostname, .. } => hostname,
        }
    }
}

/// Extra time an agent gets beyond the probe's own timeout to answer over its session.
const AGENT_SLACK: Duration = Duration::from_secs(2);

fn miss(detail: impl Into<String>, started: Instant) -> ProbeResult {
    ProbeResult {
        ok: false,
        detail: detail.into(),
        latency_micros: started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
    }
}

/// Whether `value` is within the bounds (strictly below `below`, strictly above `above`).
pub fn within(value: f64, below: Option<f64>, above: Option<f64>) -> bool {
    below.is_none_or(|b| value < b) && above.is_none_or(|a| value > a)
}

fn bounds_text(below: Option<f64>, above: Option<f64>) -> String {
    match (below, above) {
        (Some(b), Some(a)) => format!("above {a} and below {b}"),
        (Some(b), None) => format!("below {b}"),
        (None, Some(a)) => format!("above {a}"),
        (None, None) => "anything".into(),
    }
}

/// Runs `probe` once at `place`.
pub async fn check(fleet: &Fleet, probe: &Probe, place: &Place) -> ProbeResult {
    let started = Instant::now();
    match (&probe.check, place) {
        (Check::Http(h), Place::Coordinator) => rampart_agent::probes::http::probe(h).await,
        (Check::Tcp(t), Place::Coordinator) => rampart_agent::probes::tcp(t).await,
        (
            Check::Prometheus {
                url,
                query,
                below,
                above,
            },
            _,
        ) => prometheus(url, query, *below, *above).await,
        (Check::Metric { name, below, above }, Place::Agent { id, .. }) => {
            // A sample older than three intervals (at least 3 s) means the stream stopped.
            let stale = (probe.interval * 3).max(Duration::from_secs(3));
            match fleet.metrics(id) {
                None => miss("no metrics from the agent yet", started),
                Some((at, _)) if at.elapsed() > stale => miss(
                    format!(
                        "no metrics from the agent for {} ms",
                        at.elapsed().as_millis()
                    ),
                    started,
                ),
                Some((_, m)) => {
                    let v = rampart_agent::probes::metrics::value(&m, name).unwrap_or(f64::NAN);
                    ProbeResult {
                        ok: within(v, *below, *above),
                        detail: format!(
                            "{name} = {v:.1} (must be {})",
                            bounds_text(*below, *above)
                        ),
                        latency_micros: 0,
                    }
                }
            }
        }
        (Check::Metric { .. }, Place::Coordinator) => {
            miss("a metric probe reads an agent's metrics", started)
        }
        (Check::Command(_), Place::Coordinator) => {
            miss("command probes run on agents only", started)
        }
        (c, Place::Agent { id, .. }) => {
            let (kind, timeout_ms) = match c {
                Check::Http(h) => (run_probe::Kind::Http(h.clone()), h.timeout_ms),
                Check::Tcp(t) => (run_probe::Kind::Tcp(t.clone()), t.timeout_ms),
                Check::Command(cmd) => (run_probe::Kind::Command(cmd.clone()), cmd.timeout_ms),
                _ => unreachable!("handled above"),
            };
            let timeout = rampart_agent::probes::timeout(timeout_ms) + AGENT_SLACK;
            match fleet
                .call(
                    id,
                    command::Kind::RunProbe(RunProbe { kind: Some(kind) }),
                    timeout,
                )
                .await
            {
                Ok(r) => match r.outcome {
                    Some(command_result::Outcome::Probe(p)) => p,
                    Some(command_result::Outcome::Error(e)) => miss(e, started),
                    _ => miss(
                        "the agent answered with something else (is it older than the coordinator?)",
                        started,
                    ),
                },
                Err(e) => miss(e.to_string(), started),
            }
        }
    }
}

/// Agents commanded at once.
const CONCURRENCY: usize = 256;

/// Starts the metric streams of `agents` for `lifetime` when a probe of `hypothesis` reads
/// metrics (or stops them, with `None`); true when streams were started.
pub async fn metric_streams(
    fleet: &Fleet,
    agents: &[String],
    hypothesis: &[Probe],
    lifetime: Option<Duration>,
) -> bool {
    use futures::StreamExt;
    let Some(every) = hypothesis
        .iter()
        .filter(|p| matches!(p.check, Check::Metric { .. }))
        .map(|p| p.interval)
        .min()
    else {
        return false;
    };
    let millis = |d: Duration| d.as_millis().min(u128::from(u32::MAX)) as u32;
    let duration_ms = lifetime.map(millis).unwrap_or(0);
    futures::stream::iter(agents)
        .for_each_concurrent(CONCURRENCY, |id| async move {
            if lifetime.is_some() {
                fleet.watch_metrics(id);
            } else if fleet.unwatch_metrics(id) > 0 {
                // Another run still reads this host's metrics: its stream goes on.
                return;
            } else {
                fleet.forget_metrics(id);
            }
            let kind = command::Kind::StreamMetrics(rampart_proto::v1::StreamMetrics {
                interval_ms: millis(every),
                duration_ms,
            });
            match fleet.call(id, kind, super::AGENT_TIMEOUT).await {
                Ok(r) => {
                    if let Some(command_result::Outcome::Metrics(m)) = r.outcome
                        && lifetime.is_some()
                    {
                        fleet.record_metrics(id, m);
                    }
                }
                Err(e) => tracing::warn!(%e, agent = %id, "metric stream not changed"),
            }
        })
        .await;
    lifetime.is_some()
}

/// Percent-encodes a query-string value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The values of a Prometheus instant-query answer (`/api/v1/query`), or why there are none.
pub fn query_values(body: &[u8]) -> Result<Vec<f64>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "Prometheus: {} {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or("")
        ));
    }
    let sample = |pair: &serde_json::Value| -> Result<f64, String> {
        pair.get(1)
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse::<f64>().ok())
            .ok_or_else(|| format!("unreadable sample {pair}"))
    };
    let data = &v["data"];
    match data["resultType"].as_str() {
        Some("scalar") => Ok(vec![sample(&data["result"])?]),
        Some("vector") => data["result"]
            .as_array()
            .map(|a| a.iter().map(|s| sample(&s["value"])).collect())
            .unwrap_or_else(|| Ok(Vec::new())),
        other => Err(format!(
            "the query returned a {}; use an instant vector or scalar",
            other.unwrap_or("nothing")
        )),
    }
}

/// Runs a PromQL instant query; every value it returns must be within the bounds.
pub async fn prometheus(
    url: &str,
    query: &str,
    below: Option<f64>,
    above: Option<f64>,
) -> ProbeResult {
    let started = Instant::now();
    let full = format!(
        "{}/api/v1/query?query={}",
        url.trim_end_matches('/'),
        encode(query)
    );
    let r = match rampart_agent::probes::http::get(&full, rampart_agent::probes::DEFAULT_TIMEOUT)
        .await
    {
        Ok(r) => r,
        Err(e) => return miss(format!("Prometheus unreachable: {e}"), started),
    };
    match query_values(&r.body) {
        Err(e) => miss(e, started),
        Ok(values) if values.is_empty() => miss(format!("{query} returned no data"), started),
        Ok(values) => {
            let ok = values.iter().all(|v| within(*v, below, above));
            let shown: Vec<String> = values.iter().take(5).map(|v| format!("{v}")).collect();
            ProbeResult {
                ok,
                detail: format!(
                    "{query} = {} (must be {})",
                    shown.join(", "),
                    bounds_text(below, above)
                ),
                latency_micros: started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_answers_are_read() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"7.5"]}]}}"#;
        assert_eq!(query_values(vector).unwrap(), vec![7.5]);
        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"2"]}}"#;
        assert_eq!(query_values(scalar).unwrap(), vec![2.0]);
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(query_values(empty).unwrap().is_empty());
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(query_values(bad).unwrap_err().contains("bad_data"));
        assert!(query_values(b"<html>").is_err());
        assert_eq!(encode("sum(rate(x[1m]))"), "sum%28rate%28x%5B1m%5D%29%29");
    }

    #[test]
    fn bounds_are_strict() {
        assert!(within(4.9, Some(5.0), None));
        assert!(!within(5.0, Some(5.0), None));
        assert!(within(1.0, Some(5.0), Some(0.5)));
        assert!(!within(0.5, None, Some(0.5)));
        assert!(!within(f64::NAN, Some(5.0), None));
    }
}
