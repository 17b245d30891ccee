//! What the stored results say over time: each host's score in each sweep, the latest state per
//! host and per rule, and drift (checks that flipped between pass and fail).

use std::collections::BTreeMap;

use rampart_proto::v1::{DriftEvent, HostScore, RuleScore};

use crate::store::ResultHistoryRow;

fn count(score: &mut HostScore, status: &str) {
    match status {
        "pass" => score.pass += 1,
        "fail" => score.fail += 1,
        "error" => score.error += 1,
        super::waiver::WAIVED => score.waived += 1,
        _ => score.not_applicable += 1,
    }
}

fn finish(mut s: HostScore) -> HostScore {
    let applied = s.pass + s.fail + s.error;
    s.score = if applied == 0 {
        100.0
    } else {
        f64::from(s.pass) * 100.0 / f64::from(applied)
    };
    s
}

/// One score per (host, sweep), oldest first per host.
pub fn sweep_scores<'a>(rows: impl IntoIterator<Item = &'a ResultHistoryRow>) -> Vec<HostScore> {
    let mut by: BTreeMap<(String, i64, String), HostScore> = BTreeMap::new();
    for r in rows {
        let s = by
            .entry((r.agent_id.clone(), r.time, r.sweep_id.clone()))
            .or_insert_with(|| HostScore {
                agent_id: r.agent_id.clone(),
                hostname: r.hostname.clone(),
                sweep_id: r.sweep_id.clone(),
                checked_unix_ms: r.time,
                ..Default::default()
            });
        count(s, &r.status);
    }
    by.into_values().map(finish).collect()
}

/// Each host's latest checked sweep, and per rule the statuses across those latest results.
pub fn status(rows: &[ResultHistoryRow]) -> (Vec<HostScore>, Vec<RuleScore>) {
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for r in rows {
        let e = latest
            .entry(r.agent_id.clone())
            .or_insert((r.time, r.sweep_id.clone()));
        if (r.time, &r.sweep_id) > (e.0, &e.1) {
            *e = (r.time, r.sweep_id.clone());
        }
    }
    let current: Vec<&ResultHistoryRow> = rows
        .iter()
        .filter(|r| latest.get(&r.agent_id).is_some_and(|l| l.1 == r.sweep_id))
        .collect();
    let hosts = sweep_scores(current.iter().copied());
    let mut rules: BTreeMap<String, RuleScore> = BTreeMap::new();
    for r in current {
        let s = rules.entry(r.rule.clone()).or_insert_with(|| RuleScore {
            rule: r.rule.clone(),
            severity: r.severity.clone(),
            ..Default::default()
        });
        match r.status.as_str() {
            "pass" => s.pass += 1,
            "fail" => s.fail += 1,
            "error" => s.error += 1,
            super::waiver::WAIVED => s.waived += 1,
            _ => s.not_applicable += 1,
        }
    }
    (hosts, rules.into_values().collect())
}

/// Rewrites waived results whose waiver is no longer in `active` (expired or removed) to the
/// status they had: the failure counts again from the day the waiver ends, without a new sweep.
pub fn lapse_waivers(rows: &mut [ResultHistoryRow], active: &std::collections::HashSet<String>) {
    for r in rows
        .iter_mut()
        .filter(|r| r.status == super::waiver::WAIVED)
    {
        let now = super::waiver::effective_status(&r.status, r.waiver.as_deref(), active);
        if now != r.status {
            r.status = now.into_owned();
        }
    }
}

/// Checks whose status flipped between pass and fail from one sweep to the next on the same host.
/// `rows` must be ordered by agent, rule and time (as the store returns them).
pub fn drift(rows: &[ResultHistoryRow], since: i64) -> Vec<DriftEvent> {
    let mut events = Vec::new();
    for pair in rows.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.agent_id != b.agent_id || a.rule != b.rule || b.time < since {
            continue;
        }
        let flipped = matches!(
            (a.status.as_str(), b.status.as_str()),
            ("pass", "fail") | ("fail", "pass")
        );
        if flipped {
            events.push(DriftEvent {
                agent_id: b.agent_id.clone(),
                hostname: b.hostname.clone(),
                rule: b.rule.clone(),
                from_status: a.status.clone(),
                to_status: b.status.clone(),
                at_unix_ms: b.time,
                sweep_id: b.sweep_id.clone(),
                evidence_before_json: a.evidence.clone(),
                evidence_after_json: b.evidence.clone(),
            });
        }
    }
    events.sort_by_key(|e| e.at_unix_ms);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        agent: &str,
        sweep: &str,
        time: i64,
        rule: &str,
        status: &str,
        evidence: &str,
    ) -> ResultHistoryRow {
        ResultHistoryRow {
            sweep_id: sweep.into(),
            time,
            agent_id: agent.into(),
            hostname: format!("{agent}-host"),
            rule: rule.into(),
            status: status.into(),
            severity: "high".into(),
            evidence: evidence.into(),
            waiver: None,
        }
    }

    #[test]
    fn waived_results_are_left_out_of_scores_until_their_waiver_lapses() {
        let waived = |id: &str| {
            let mut r = row("a", "s1", 1, id, crate::compliance::waiver::WAIVED, "{}");
            r.waiver = Some(format!(
                "{{\"id\":\"w-{id}\",\"rule\":\"{id}\",\"reason\":\"x\",\"expires_at\":9,\"created_by\":\"a\",\"was\":\"fail\"}}"
            ));
            r
        };
        let mut rows = vec![
            row("a", "s1", 1, "r1", "pass", "{}"),
            waived("r2"),
            waived("r3"),
        ];
        let (hosts, rules) = status(&rows);
        assert_eq!(
            (
                hosts[0].pass,
                hosts[0].fail,
                hosts[0].waived,
                hosts[0].score
            ),
            (1, 0, 2, 100.0)
        );
        assert_eq!(rules.iter().map(|r| r.waived).sum::<u32>(), 2);
        // w-r3 expired or was removed: r3 fails again; w-r2 still holds.
        lapse_waivers(&mut rows, &["w-r2".to_string()].into());
        let (hosts, _) = status(&rows);
        assert_eq!(
            (
                hosts[0].pass,
                hosts[0].fail,
                hosts[0].waived,
                hosts[0].score
            ),
            (1, 1, 1, 50.0)
        );
    }

    #[test]
    fn flips_are_drift_and_the_rest_is_not() {
        let mut rows = vec![
            row("a", "s1", 1, "r1", "pass", "{\"v\":\"no\"}"),
            row("a", "s2", 2, "r1", "fail", "{\"v\":\"yes\"}"),
            row("a", "s3", 3, "r1", "fail", "{\"v\":\"yes\"}"),
            row("a", "s4", 4, "r1", "pass", "{\"v\":\"no\"}"),
            row("a", "s1", 1, "r2", "pass", "{}"),
            row("a", "s2", 2, "r2", "not_applicable", "{}"),
            row("b", "s1", 1, "r1", "fail", "{}"),
            row("b", "s2", 2, "r1", "fail", "{}"),
        ];
        rows.sort_by(|x, y| (&x.agent_id, &x.rule, x.time).cmp(&(&y.agent_id, &y.rule, y.time)));
        let d = drift(&rows, 0);
        let got: Vec<(&str, &str, &str, i64)> = d
            .iter()
            .map(|e| {
                (
                    e.agent_id.as_str(),
                    e.from_status.as_str(),
                    e.to_status.as_str(),
                    e.at_unix_ms,
                )
            })
            .collect();
        assert_eq!(got, [("a", "pass", "fail", 2), ("a", "fail", "pass", 4)]);
        assert_eq!(d[0].evidence_before_json, "{\"v\":\"no\"}");
        assert_eq!(d[0].evidence_after_json, "{\"v\":\"yes\"}");
        assert_eq!(drift(&rows, 3).len(), 1, "--since keeps later flips only");

        let (hosts, rules) = status(&rows);
        assert_eq!(hosts.len(), 2);
        let a = hosts.iter().find(|h| h.agent_id == "a").unwrap();
        assert_eq!((a.sweep_id.as_str(), a.pass, a.fail), ("s4", 1, 0));
        let b = hosts.iter().find(|h| h.agent_id == "b").unwrap();
        assert_eq!((b.fail, b.score), (1, 0.0));
        let r1 = rules.iter().find(|r| r.rule == "r1").unwrap();
        assert_eq!((r1.pass, r1.fail), (1, 1));
        assert_eq!(
            sweep_scores(&rows)
                .iter()
                .filter(|s| s.agent_id == "a")
                .count(),
            4
        );
    }
}
