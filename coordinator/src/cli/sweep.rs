//! `rampart sweep`: starts a sweep; with `--wait`, streams progress on stderr and prints the
//! report on stdout. `rampart sweep show ID` prints a stored sweep's report. Reports come in the
//! formats of [`crate::report`].

use std::io::Write;

use clap::{Args, Subcommand, ValueEnum};
use rampart_common::time::now_ms;
use rampart_proto::v1::{
    CheckInfo, GetSweepRequest, HostResult, ListPacksRequest, SweepRequest, SweepSummary,
    sweep_event,
};

use super::output::print_table;
use super::{Client, EXIT_FINDINGS, rpc, usage};
use crate::compliance::Severity;
use crate::report::{self, Framework, SweepReport};

/// Report formats of `sweep` and `sweep show`.
#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ReportFormat {
    /// Per-host counts and the findings, aligned for a terminal.
    #[default]
    Table,
    /// Everything: every result with its evidence, per host.
    Json,
    /// JUnit XML, for CI test reports.
    Junit,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// OSCAL assessment-results JSON, for auditors.
    Oscal,
    /// Markdown, for tickets and pull requests.
    Markdown,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub show: Option<SweepCommand>,
    /// Only agents with all these labels: k=v,k2=v2.
    #[arg(long, default_value = "")]
    pub selector: String,
    /// Policy pack (see `rampart packs ls`).
    #[arg(long, default_value = crate::api::compliance::DEFAULT_PACK)]
    pub pack: String,
    /// How long to wait for each host's facts before calling it unreachable.
    #[arg(long, default_value = "30s", value_parser = rampart_common::time::parse_duration)]
    pub timeout: std::time::Duration,
    /// Evaluate and time each check on its own (slower): shows which check is slow.
    #[arg(long)]
    pub profile: bool,
    /// Evaluate each host's latest stored facts instead of asking the agents (after a pack
    /// changed, say): no agent is contacted.
    #[arg(long)]
    pub stored: bool,
    /// Wait for every host, showing progress, and print the report. Without it the sweep runs on
    /// the coordinator and its id is printed (see `rampart sweep show ID`).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: exit with status 5 when a check at or above this severity fails or errors,
    /// or a host is unreachable: low, medium, high or critical.
    #[arg(long)]
    pub fail_on: Option<Severity>,
    /// Report format; anything but table needs --wait.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: ReportFormat,
    /// With --wait: also score the hosts per value of this label (e.g. env, team), with table
    /// or json output.
    #[arg(long, value_name = "LABEL")]
    pub group_by: Option<String>,
    /// With --wait: also group the results by the controls of this framework that the checks
    /// cite (state per control), with table or json output.
    #[arg(long, value_enum)]
    pub framework: Option<Framework>,
}

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Print a stored sweep's report (a running sweep shows the hosts that reported so far).
    Show {
        sweep_id: String,
        /// Exit with status 5 when a check at or above this severity fails or errors, or a host
        /// is unreachable.
        #[arg(long)]
        fail_on: Option<Severity>,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: ReportFormat,
        /// Also score the hosts per value of this label, with table or json output.
        #[arg(long, value_name = "LABEL")]
        group_by: Option<String>,
        /// Also group the results by the controls of this framework that the checks cite
        /// (state per control), with table or json output.
        #[arg(long, value_enum)]
        framework: Option<Framework>,
    },
}

/// The views of the table and JSON reports: label groups and framework controls.
#[derive(Debug, Clone, Copy, Default)]
struct Views<'a> {
    group_by: Option<&'a str>,
    framework: Option<Framework>,
}

/// `--group-by` and `--framework` are views of the table and JSON reports; other formats have a
/// fixed schema.
fn check_views(
    group_by: Option<&str>,
    framework: Option<Framework>,
    output: ReportFormat,
) -> Result<(), anyhow::Error> {
    let plain = matches!(output, ReportFormat::Table | ReportFormat::Json);
    if group_by.is_some() && !plain {
        return Err(usage("--group-by works with -o table or -o json"));
    }
    if framework.is_some() && !plain {
        return Err(usage("--framework works with -o table or -o json"));
    }
    Ok(())
}

impl SweepArgs {
    /// Usage mistakes, found before dialing.
    pub fn check(&self) -> Result<(), anyhow::Error> {
        if let Some(SweepCommand::Show {
            group_by,
            output,
            framework,
            ..
        }) = &self.show
        {
            return check_views(group_by.as_deref(), *framework, *output);
        }
        check_views(self.group_by.as_deref(), self.framework, self.output)?;
        if !self.wait && self.group_by.is_some() {
            return Err(usage(
                "--group-by needs --wait (or group a finished sweep with `rampart sweep show ID --group-by LABEL`)",
            ));
        }
        if !self.wait && self.framework.is_some() {
            return Err(usage(
                "--framework needs --wait (or `rampart sweep show ID --framework NAME`)",
            ));
        }
        rampart_common::labels::Selector::parse(&self.selector).map_err(usage)?;
        if !self.wait && self.fail_on.is_some() {
            return Err(usage(
                "--fail-on needs --wait: the exit status can only reflect a finished sweep",
            ));
        }
        if !self.wait && self.output != ReportFormat::Table {
            return Err(usage(
                "-o needs --wait (or print a finished sweep with `rampart sweep show ID -o FORMAT`)",
            ));
        }
        Ok(())
    }
}

fn severity_of(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::Critical)
}

/// Whether `--fail-on` trips: a failed or errored check at or above `level`, or an unchecked host.
/// A waived result (a failure a waiver accepts) never trips it.
pub fn trips(hosts: &[HostResult], level: Severity) -> bool {
    hosts.iter().any(|h| {
        h.status != "ok"
            || h.results.iter().any(|r| {
                matches!(r.status.as_str(), "fail" | "error") && severity_of(&r.severity) >= level
            })
    })
}

/// The pack's checks and version, for reports that describe their rules (empty if the pack is
/// no longer loaded).
async fn pack_checks(client: &Client, pack: &str) -> anyhow::Result<(String, Vec<CheckInfo>)> {
    let packs = client
        .compliance()
        .list_packs(ListPacksRequest {})
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(packs
        .packs
        .into_iter()
        .find(|p| p.name == pack)
        .map(|p| (p.version, p.check_info))
        .unwrap_or_default())
}

fn print_table_report(r: &SweepReport) {
    let rows: Vec<Vec<String>> = r
        .hosts
        .iter()
        .map(|h| {
            let count = |s: &str| {
                h.results
                    .iter()
                    .filter(|v| v.status == s)
                    .count()
                    .to_string()
            };
            vec![
                h.hostname.clone(),
                h.agent_id.clone(),
                report::labels_text(&h.labels),
                h.status.clone(),
                count("pass"),
                count("fail"),
                count("error"),
                count("not_applicable"),
                count(crate::compliance::waiver::WAIVED),
            ]
        })
        .collect();
    print_table(
        &[
            "HOST", "AGENT", "LABELS", "STATUS", "PASS", "FAIL", "ERROR", "N/A", "WAIVED",
        ],
        &rows,
    );
    let findings: Vec<Vec<String>> = r
        .hosts
        .iter()
        .flat_map(|h| {
            h.results
                .iter()
                .filter(|v| v.status == "fail" || v.status == "error")
                .map(move |v| {
                    vec![
                        h.hostname.clone(),
                        v.severity.clone(),
                        v.status.clone(),
                        v.rule.clone(),
                        v.title.clone(),
                    ]
                })
        })
        .collect();
    if !findings.is_empty() {
        println!();
        print_table(&["HOST", "SEVERITY", "STATUS", "RULE", "TITLE"], &findings);
    }
    let waived: Vec<Vec<String>> = r
        .hosts
        .iter()
        .flat_map(|h| {
            h.results.iter().filter_map(move |v| {
                v.waiver.as_ref().map(|w| {
                    vec![
                        h.hostname.clone(),
                        v.rule.clone(),
                        w.was.clone(),
                        rampart_common::time::format_ms(w.expires_unix_ms),
                        w.id.clone(),
                        w.reason.clone(),
                    ]
                })
            })
        })
        .collect();
    if !waived.is_empty() {
        println!();
        print_table(
            &["HOST", "WAIVED RULE", "WAS", "UNTIL", "WAIVER", "REASON"],
            &waived,
        );
    }
    let s = r.summary;
    println!(
        "\n{} host(s), {} unreachable; {} pass, {} fail, {} error, {} n/a, {} waived in {} ms",
        s.hosts, s.unreachable, s.pass, s.fail, s.error, s.not_applicable, s.waived, s.duration_ms
    );
}

/// Per-group scores as a table.
pub fn print_groups(label: &str, groups: &[report::GroupScore]) {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.value.clone(),
                g.hosts.to_string(),
                g.unreachable.to_string(),
                format!("{:.1}%", g.score),
                g.pass.to_string(),
                g.fail.to_string(),
                g.error.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            &label.to_uppercase(),
            "HOSTS",
            "UNREACHABLE",
            "SCORE",
            "PASS",
            "FAIL",
            "ERROR",
        ],
        &rows,
    );
}

/// Per-control state as a table.
fn print_controls(framework: Framework, controls: &[report::ControlScore]) {
    let rows: Vec<Vec<String>> = controls
        .iter()
        .map(|c| {
            vec![
                c.control.clone(),
                c.state.to_string(),
                c.pass.to_string(),
                c.fail.to_string(),
                c.error.to_string(),
                c.waived.to_string(),
                c.not_applicable.to_string(),
                c.checks.join(" "),
            ]
        })
        .collect();
    print_table(
        &[
            &framework.name().to_uppercase(),
            "STATE",
            "PASS",
            "FAIL",
            "ERROR",
            "WAIVED",
            "N/A",
            "CHECKS",
        ],
        &rows,
    );
}

/// Prints `hosts` in `format` and returns the exit status `fail_on` asks for.
async fn print_report(
    client: &Client,
    mut r: SweepReport<'_>,
    format: ReportFormat,
    fail_on: Option<Severity>,
    views: Views<'_>,
) -> anyhow::Result<i32> {
    let group_by = views.group_by;
    let needs_checks = views.framework.is_some()
        || matches!(
            format,
            ReportFormat::Sarif
                | ReportFormat::Oscal
                | ReportFormat::Markdown
                | ReportFormat::Junit
        );
    let (version, checks) = if needs_checks {
        pack_checks(client, r.pack).await?
    } else {
        Default::default()
    };
    r.pack_version = &version;
    r.checks = &checks;
    match format {
        ReportFormat::Table => {
            print_table_report(&r);
            if let Some(label) = group_by {
                println!();
                print_groups(label, &report::groups(r.hosts, label));
            }
            if let Some(f) = views.framework {
                println!();
                print_controls(f, &report::framework_scores(r.hosts, r.checks, f));
            }
        }
        ReportFormat::Json => {
            let mut j = report::JsonReport::new(&r);
            if let Some(label) = group_by {
                j.groups = Some(serde_json::json!({
                    "label": label,
                    "groups": report::groups(r.hosts, label),
                }));
            }
            if let Some(f) = views.framework {
                j.framework = Some(serde_json::json!({
                    "name": f.name(),
                    "controls": report::framework_scores(r.hosts, r.checks, f),
                }));
            }
            write_json(std::io::stdout().lock(), &j)?;
        }
        ReportFormat::Junit => print!("{}", report::junit(&r)),
        ReportFormat::Sarif => println!("{}", serde_json::to_string_pretty(&report::sarif(&r))?),
        ReportFormat::Oscal => println!("{}", serde_json::to_string_pretty(&report::oscal(&r))?),
        ReportFormat::Markdown => print!("{}", report::markdown(&r)),
    }
    Ok(match fail_on {
        Some(_) if r.interrupted => EXIT_FINDINGS,
        Some(level) if trips(r.hosts, level) => EXIT_FINDINGS,
        _ => 0,
    })
}

fn sort_hosts(hosts: &mut [HostResult]) {
    hosts.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
}

pub async fn run(client: Client, args: SweepArgs) -> anyhow::Result<i32> {
    if let Some(SweepCommand::Show {
        sweep_id,
        fail_on,
        output,
        group_by,
        framework,
    }) = args.show
    {
        let views = Views {
            group_by: group_by.as_deref(),
            framework,
        };
        return show(client, &sweep_id, fail_on, output, views).await;
    }
    let req = SweepRequest {
        selector: args.selector,
        pack: args.pack,
        profile: args.profile,
        stored_facts: args.stored,
        timeout_ms: args.timeout.as_millis().min(u128::from(u32::MAX)) as u32,
    };
    let mut stream = client
        .compliance()
        .sweep(req)
        .await
        .map_err(rpc)?
        .into_inner();
    let (mut sweep_id, mut pack, mut total) = (String::new(), String::new(), 0u32);
    let started = now_ms();
    let mut hosts = Vec::new();
    let mut summary = None;
    while let Some(ev) = stream.message().await.map_err(rpc)? {
        match ev.event {
            Some(sweep_event::Event::Started(s)) => {
                eprintln!(
                    "sweep {} with pack {}: {} host(s)",
                    s.sweep_id, s.pack, s.hosts
                );
                (sweep_id, pack, total) = (s.sweep_id, s.pack, s.hosts);
                if !args.wait {
                    // The coordinator finishes and stores the sweep on its own.
                    println!("{sweep_id}");
                    eprintln!(
                        "running on the coordinator; see the report with `rampart sweep show {sweep_id}`"
                    );
                    return Ok(0);
                }
            }
            Some(sweep_event::Event::Host(h)) => {
                let count = |s: &str| h.results.iter().filter(|r| r.status == s).count();
                let line = if h.status == "ok" {
                    format!(
                        "{} pass, {} fail, {} error, {} n/a, {} waived",
                        count("pass"),
                        count("fail"),
                        count("error"),
                        count("not_applicable"),
                        count(crate::compliance::waiver::WAIVED)
                    )
                } else {
                    format!("UNREACHABLE: {}", h.message)
                };
                eprintln!(
                    "[{}/{total}] {} ({}): {line}",
                    hosts.len() + 1,
                    h.hostname,
                    h.agent_id
                );
                hosts.push(h);
            }
            Some(sweep_event::Event::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    let summary = summary.ok_or_else(|| {
        anyhow::anyhow!("the sweep ended without a summary; see the coordinator's log")
    })?;
    sort_hosts(&mut hosts);
    let r = SweepReport {
        sweep_id: &sweep_id,
        pack: &pack,
        pack_version: "",
        started_unix_ms: started,
        finished_unix_ms: now_ms(),
        hosts: &hosts,
        summary: &summary,
        checks: &[],
        profiled: args.profile,
        interrupted: false,
    };
    let views = Views {
        group_by: args.group_by.as_deref(),
        framework: args.framework,
    };
    print_report(&client, r, args.output, args.fail_on, views).await
}

async fn show(
    client: Client,
    sweep_id: &str,
    fail_on: Option<Severity>,
    output: ReportFormat,
    views: Views<'_>,
) -> anyhow::Result<i32> {
    let s = client
        .compliance()
        .get_sweep(GetSweepRequest {
            sweep_id: sweep_id.into(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if s.interrupted {
        eprintln!(
            "sweep {} was interrupted: the coordinator stopped before it finished; {} of {} host(s) reported",
            s.sweep_id,
            s.hosts
                .iter()
                .filter(|h| !h.message.starts_with("interrupted"))
                .count(),
            s.selected
        );
    } else if s.finished_unix_ms == 0 {
        eprintln!(
            "sweep {} is still running: {} of {} host(s) reported",
            s.sweep_id,
            s.hosts.len(),
            s.selected
        );
    }
    let mut hosts = s.hosts;
    sort_hosts(&mut hosts);
    let summary: SweepSummary = s.summary.unwrap_or_default();
    let profiled = hosts.iter().any(|h| h.results.iter().any(|v| v.micros > 0));
    let r = SweepReport {
        sweep_id: &s.sweep_id,
        pack: &s.pack,
        pack_version: "",
        started_unix_ms: s.started_unix_ms,
        finished_unix_ms: s.finished_unix_ms.max(s.started_unix_ms),
        hosts: &hosts,
        summary: &summary,
        checks: &[],
        profiled,
        interrupted: s.interrupted,
    };
    print_report(&client, r, output, fail_on, views).await
}

/// Writes `value` as pretty JSON as it is serialized (a large sweep's report is never held
/// whole). A reader that stops early (`| head`) ends the output quietly, as with any
/// command-line tool, rather than with an error.
fn write_json(out: impl std::io::Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    /// A writer whose reader went away after `room` bytes.
    struct ClosedAfter {
        room: usize,
        got: Vec<u8>,
    }

    impl std::io::Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.got.len() >= self.room {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room - self.got.len());
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_output_ends_quietly_when_its_reader_stops_and_fails_on_other_errors() {
        let big: Vec<u32> = (0..100_000).collect();
        let mut whole = ClosedAfter {
            room: usize::MAX,
            got: Vec::new(),
        };
        super::write_json(&mut whole, &big).unwrap();
        assert_eq!(serde_json::from_slice::<Vec<u32>>(&whole.got).unwrap(), big);
        let mut head = ClosedAfter {
            room: 100,
            got: Vec::new(),
        };
        super::write_json(&mut head, &big).unwrap();
        assert_eq!(head.got.len(), 100);

        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("no space left on device"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let err = super::write_json(Full, &big).unwrap_err();
        assert!(err.to_string().contains("no space left"), "{err}");
    }

    use super::*;
    use crate::report::fixture;

    #[test]
    fn fail_on_trips_on_failures_at_the_level_and_never_on_waived_results() {
        let mut hosts = fixture::hosts();
        hosts.truncate(1); // web-1 only: no unreachable host
        // A high fail and a medium error.
        assert!(trips(&hosts, Severity::High));
        assert!(!trips(&hosts, Severity::Critical));
        // Without them only a waived medium fail and passes are left.
        hosts[0]
            .results
            .retain(|v| !matches!(v.status.as_str(), "fail" | "error"));
        assert!(hosts[0].results.iter().any(|v| v.status == "waived"));
        assert!(!trips(&hosts, Severity::Low));
        // The same result without its waiver trips.
        for v in &mut hosts[0].results {
            if v.status == "waived" {
                v.status = "fail".into();
            }
        }
        assert!(trips(&hosts, Severity::Low));
        // An unreachable host always does.
        assert!(trips(&fixture::hosts()[1..], Severity::Critical));
    }
}
