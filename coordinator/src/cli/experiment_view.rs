//! How experiment runs and game days look to operators: timeline lines, the live status line,
//! `show` tables, and the Markdown report.

use std::collections::BTreeMap;

use rampart_common::time::format_ms;
use rampart_proto::v1::{Run, TimelineEvent};

use super::Output;
use super::experiment::ReportFormat;
use super::output::print_table;

pub(super) fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

pub(super) fn event_line(e: &TimelineEvent) -> String {
    let at = format_ms(e.at_unix_ms);
    let time = at.get(11..19).unwrap_or(&at);
    let mut line = format!("{time} {:<10}", e.kind);
    if !e.hostname.is_empty() {
        line.push_str(&format!(" [{}]", e.hostname));
    }
    line.push(' ');
    line.push_str(&e.detail);
    if !e.actor.is_empty() && e.actor != "coordinator" {
        line.push_str(&format!(
            " — {}",
            e.actor.split(" (").next().unwrap_or_default()
        ));
    }
    line
}

/// One status line: the stage, faults per state, probes holding or missing.
pub(super) fn status_line(r: &Run) -> String {
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.faults {
        *states.entry(f.state.as_str()).or_default() += 1;
    }
    let faults: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let probes: Vec<&rampart_proto::v1::ProbeSummary> = r
        .probes
        .iter()
        .chain(r.children.iter().flat_map(|c| c.probes.iter()))
        .collect();
    let missing = probes.iter().filter(|p| p.checks > 0 && !p.last_ok).count();
    format!(
        "{} {}{} | faults: {} | probes: {} ok, {} missing",
        r.id,
        r.state,
        if r.stage.is_empty() {
            String::new()
        } else {
            format!(" (stage {:?})", r.stage)
        },
        if faults.is_empty() {
            "none".into()
        } else {
            faults.join(", ")
        },
        probes.len() - missing,
        missing
    )
}

pub(super) fn ms(v: i64) -> String {
    if v < 0 { "-".into() } else { format!("{v} ms") }
}

pub(super) fn print_run(r: &Run, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let mut rows = vec![
        vec!["run".to_string(), dash(&r.id)],
        vec!["name".into(), format!("{} ({})", r.name, r.kind)],
        vec!["state".into(), r.state.clone()],
        vec!["verdict".into(), dash(&r.verdict)],
    ];
    if !r.reason.is_empty() {
        rows.push(vec!["reason".into(), r.reason.clone()]);
    }
    rows.push(vec!["started".into(), format_ms(r.started_unix_ms)]);
    rows.push(vec!["finished".into(), format_ms(r.finished_unix_ms)]);
    if r.kind == "experiment" {
        rows.push(vec!["recovery".into(), ms(r.recovery_ms)]);
        rows.push(vec!["halt latency".into(), ms(r.halt_latency_ms)]);
        let hosts: Vec<&str> = r.targets.iter().map(|t| t.hostname.as_str()).collect();
        rows.push(vec!["targets".into(), hosts.join(", ")]);
    }
    for (i, p) in r.plan.iter().enumerate() {
        rows.push(vec![
            if i == 0 { "plan".into() } else { String::new() },
            p.clone(),
        ]);
    }
    print_table(&["", ""], &rows);
    if !r.children.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = r
            .children
            .iter()
            .map(|c| {
                vec![
                    c.stage.clone(),
                    c.file.clone(),
                    c.id.clone(),
                    c.state.clone(),
                    dash(&c.verdict),
                    c.reason.clone(),
                ]
            })
            .collect();
        print_table(
            &["STAGE", "EXPERIMENT", "RUN", "STATE", "VERDICT", "REASON"],
            &rows,
        );
    }
    if !r.probes.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = r
            .probes
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.kind.clone(),
                    p.source.clone(),
                    p.checks.to_string(),
                    p.misses.to_string(),
                    p.max_consecutive.to_string(),
                    p.last_detail.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "PROBE",
                "KIND",
                "FROM",
                "CHECKS",
                "MISSES",
                "MAX IN A ROW",
                "LAST",
            ],
            &rows,
        );
    }
    if !r.faults.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = r
            .faults
            .iter()
            .map(|f| {
                vec![
                    (f.step + 1).to_string(),
                    f.hostname.clone(),
                    f.fault_id.clone(),
                    f.kind.clone(),
                    f.state.clone(),
                    f.detail.clone(),
                ]
            })
            .collect();
        print_table(&["STEP", "HOST", "FAULT", "KIND", "STATE", "DETAIL"], &rows);
    }
    if !r.timeline.is_empty() {
        println!();
        for e in &r.timeline {
            println!("{}", event_line(e));
        }
    }
    Ok(())
}

pub(super) fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown (or the run as JSON).
pub(super) fn report(r: &Run, format: ReportFormat) -> anyhow::Result<()> {
    if format == ReportFormat::Json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("{}", markdown(r));
    Ok(())
}

/// A run's report in Markdown.
pub fn markdown(r: &Run) -> String {
    let mut out = String::new();
    let kind = if r.kind == "gameday" {
        "Game day"
    } else {
        "Experiment"
    };
    out.push_str(&format!(
        "# {kind} `{}` — {}\n\n",
        md(&r.name),
        dash(&r.verdict)
    ));
    out.push_str(&format!("- Run: `{}` ({})\n", r.id, r.state));
    if !r.reason.is_empty() {
        out.push_str(&format!("- Reason: {}\n", md(&r.reason)));
    }
    out.push_str(&format!("- Started by: {}\n", md(&r.created_by)));
    out.push_str(&format!(
        "- Started: {}; finished: {}\n",
        format_ms(r.started_unix_ms),
        format_ms(r.finished_unix_ms)
    ));
    if r.kind == "experiment" {
        out.push_str(&format!(
            "- Recovery time: {}; halt latency: {}\n",
            ms(r.recovery_ms),
            ms(r.halt_latency_ms)
        ));
        let hosts: Vec<String> = r
            .targets
            .iter()
            .map(|t| format!("`{}`", t.hostname))
            .collect();
        out.push_str(&format!("- Targets: {}\n", hosts.join(", ")));
    }
    out.push_str("\n## Plan\n\n");
    for p in &r.plan {
        out.push_str(&format!("- {}\n", md(p)));
    }
    if !r.children.is_empty() {
        out.push_str("\n## Experiments\n\n| Stage | Experiment | Run | Verdict | Reason |\n|---|---|---|---|---|\n");
        for c in &r.children {
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} |\n",
                md(&c.stage),
                md(&c.file),
                c.id,
                dash(&c.verdict),
                md(&c.reason)
            ));
        }
    }
    let probes: Vec<&rampart_proto::v1::ProbeSummary> = r
        .probes
        .iter()
        .chain(r.children.iter().flat_map(|c| c.probes.iter()))
        .collect();
    if !probes.is_empty() {
        out.push_str("\n## Probes\n\n| Probe | Kind | From | Checks | Misses | Most in a row | Last result |\n|---|---|---|---|---|---|---|\n");
        for p in probes {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                md(&p.name),
                p.kind,
                md(&p.source),
                p.checks,
                p.misses,
                p.max_consecutive,
                md(&p.last_detail)
            ));
        }
    }
    if !r.faults.is_empty() {
        out.push_str("\n## Faults\n\n| Step | Host | Fault | Kind | State | Detail |\n|---|---|---|---|---|---|\n");
        for f in &r.faults {
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | {} |\n",
                f.step + 1,
                md(&f.hostname),
                f.fault_id,
                f.kind,
                f.state,
                md(&f.detail)
            ));
        }
    }
    out.push_str("\n## Timeline\n\n| Time (UTC) | Run | Event | Host | Detail | By |\n|---|---|---|---|---|---|\n");
    for e in &r.timeline {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            format_ms(e.at_unix_ms),
            e.run_id,
            e.kind,
            md(&e.hostname),
            md(&e.detail),
            md(e.actor.split(" (").next().unwrap_or_default())
        ));
    }
    out
}
