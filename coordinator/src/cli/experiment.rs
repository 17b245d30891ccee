//! `rampart experiment …` and `rampart gameday …`: validate, run and follow chaos experiments and
//! game days, abort them, approve gates, add notes, and write reports.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use rampart_common::time::format_ms;
use rampart_proto::v1::experiment_service_client::ExperimentServiceClient;
use rampart_proto::v1::{
    AbortRunRequest, ApproveGameDayRequest, GetRunRequest, ListRunsRequest, NoteGameDayRequest,
    Run, StartExperimentRequest, StartGameDayRequest,
};

use super::experiment_view::{dash, event_line, print_run, report, status_line};
use super::output::print_table;
use super::{Authed, Client, Command, Output, rpc, usage};
use crate::chaos::spec;

/// Exit status of `experiment run --wait` / `gameday run --wait` when the verdict is not
/// `passed`, and of `experiment validate` when the file has errors.
pub const EXIT_NOT_PASSED: i32 = 1;
/// How often `--wait` asks for news.
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ReportFormat {
    #[default]
    Markdown,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Check an experiment file and list every error (file:line:col); runs nothing. Exit 1 when
    /// there is an error. Needs no coordinator.
    Validate {
        /// The experiment file (YAML).
        file: PathBuf,
    },
    /// Run an experiment: pick targets, check the hypothesis, inject the method's faults, halt
    /// and revert when the hypothesis breaks. Needs the operator role (--preview: viewer).
    Run {
        /// The experiment file (YAML).
        file: PathBuf,
        /// List the targets and the plan; inject nothing, record nothing.
        #[arg(long)]
        preview: bool,
        /// Follow the run to its verdict (progress on stderr; exit 1 unless it passed).
        #[arg(long)]
        wait: bool,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Runs and game days, newest first.
    Ls {
        /// At most this many (newest first).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// One run: verdict, targets, per-probe results, faults, timeline, recovery time.
    Show {
        /// Run or game-day id (`rampart experiment ls`).
        run: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Halt a run: every fault it injected is reverted. Needs the operator role.
    Abort {
        /// Run or game-day id (`rampart experiment ls`).
        run: String,
        /// Why, for the timeline and the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// A run's report, for the post-mortem.
    Report {
        /// Run or game-day id (`rampart experiment ls`).
        run: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: ReportFormat,
    },
}

#[derive(Debug, Subcommand)]
pub enum GameDayCommand {
    /// Start a game day (its experiment paths are relative to the plan). Needs the operator role.
    Run {
        /// The game-day plan (YAML); experiment paths in it are relative to it.
        plan: PathBuf,
        /// Follow it to the end (progress on stderr; exit 1 unless it passed).
        #[arg(long)]
        wait: bool,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Where a game day is: stages, experiments and their verdicts, the timeline.
    Status {
        /// Run or game-day id (`rampart experiment ls`).
        run: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Open the approval gate the game day waits at. Needs the operator role.
    Approve {
        /// Game-day id.
        run: String,
    },
    /// Add a note to the timeline, with your name.
    Note {
        /// Game-day (or run) id.
        run: String,
        /// The note, shown on the timeline with your name.
        text: String,
    },
    /// Halt the game day and every experiment in it; all their faults are reverted. Needs the
    /// operator role.
    Abort {
        /// Run or game-day id (`rampart experiment ls`).
        run: String,
        /// Why, for the timeline and the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The game day's report: one timeline, a verdict per experiment.
    Report {
        /// Run or game-day id (`rampart experiment ls`).
        run: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: ReportFormat,
    },
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Checks an experiment file locally; prints every error.
pub fn validate(file: &Path) -> anyhow::Result<i32> {
    let text = read(file)?;
    match spec::experiment(&display_name(file), &text) {
        Ok(e) => {
            println!(
                "{}: experiment {:?} is valid: {} probe(s), {} step(s), ends by {}",
                file.display(),
                e.name,
                e.hypothesis.len(),
                e.method.len(),
                humantime::format_duration(e.method_end())
            );
            Ok(0)
        }
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!(
                "error: {} problem(s) in {}; nothing runs",
                errs.0.len(),
                file.display()
            );
            Ok(EXIT_NOT_PASSED)
        }
    }
}

/// An experiment file's text, once it has no error (all of them are the usage error otherwise).
fn checked_experiment(file: &Path) -> anyhow::Result<String> {
    let text = read(file)?;
    if let Err(errs) = spec::experiment(&display_name(file), &text) {
        return Err(usage(format!(
            "{errs}\n{} problem(s); nothing runs",
            errs.0.len()
        )));
    }
    Ok(text)
}

/// Checks the files a command names before the coordinator is dialled, so a bad file is
/// reported as such even when the coordinator is unreachable.
pub fn precheck(cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Experiment(ExperimentCommand::Run { file, .. }) => {
            checked_experiment(file).map(drop)
        }
        Command::Gameday(GameDayCommand::Run { plan, .. }) => gameday_files(plan).map(drop),
        _ => Ok(()),
    }
}

/// The plan and every experiment file it names (relative to the plan), checked locally.
fn gameday_files(plan: &Path) -> anyhow::Result<(String, BTreeMap<String, String>)> {
    let text = read(plan)?;
    let base = plan.parent().unwrap_or(Path::new("."));
    let mut files = BTreeMap::new();
    // The paths are read from the plan's own nodes; errors are reported by `spec::gameday`.
    if let Ok(node) = marked_yaml::parse_yaml(0, &text)
        && let Some(stages) = node.as_mapping().and_then(|m| m.get_sequence("stages"))
    {
        for stage in stages.iter() {
            if let Some(list) = stage
                .as_mapping()
                .and_then(|s| s.get_sequence("experiments"))
            {
                for p in list.iter().filter_map(|n| n.as_scalar()) {
                    if let Ok(t) = std::fs::read_to_string(base.join(p.as_str())) {
                        files.insert(p.as_str().to_string(), t);
                    }
                }
            }
        }
    }
    if let Err(errs) = spec::gameday(&display_name(plan), &text, &files) {
        return Err(usage(format!(
            "{errs}\n{} problem(s); nothing runs",
            errs.0.len()
        )));
    }
    Ok((text, files))
}

fn client(c: &Client) -> ExperimentServiceClient<Authed> {
    c.experiments()
}

pub async fn experiment(c: Client, cmd: ExperimentCommand) -> anyhow::Result<i32> {
    let mut api = client(&c);
    match cmd {
        ExperimentCommand::Validate { file } => validate(&file),
        ExperimentCommand::Run {
            file,
            preview,
            wait,
            output,
        } => {
            let text = checked_experiment(&file)?;
            let run = api
                .start_experiment(StartExperimentRequest {
                    yaml: text,
                    file_name: display_name(&file),
                    preview,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            if preview {
                print_run(&run, output)?;
                return Ok(0);
            }
            eprintln!(
                "started {} ({}) on {} target(s)",
                run.id,
                run.name,
                run.targets.len()
            );
            if !wait {
                println!("{}", run.id);
                return Ok(0);
            }
            let done = follow(&mut api, &run.id).await?;
            print_run(&done, output)?;
            Ok(exit_for(&done))
        }
        ExperimentCommand::Ls { limit, output } => {
            let r = api
                .list_runs(ListRunsRequest {
                    kind: String::new(),
                    limit,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&r.runs)?),
                Output::Table => {
                    let rows: Vec<Vec<String>> = r
                        .runs
                        .iter()
                        .map(|x| {
                            vec![
                                x.id.clone(),
                                x.kind.clone(),
                                x.name.clone(),
                                x.state.clone(),
                                dash(&x.verdict),
                                format_ms(x.started_unix_ms),
                                x.targets.len().to_string(),
                                x.created_by
                                    .split(" (")
                                    .next()
                                    .unwrap_or_default()
                                    .to_string(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "RUN", "KIND", "NAME", "STATE", "VERDICT", "STARTED", "TARGETS", "BY",
                        ],
                        &rows,
                    );
                }
            }
            Ok(0)
        }
        ExperimentCommand::Show { run, output } => {
            let r = get(&mut api, &run).await?;
            print_run(&r, output)?;
            Ok(0)
        }
        ExperimentCommand::Abort { run, reason } => abort(&mut api, run, reason).await,
        ExperimentCommand::Report { run, output } => {
            let r = get(&mut api, &run).await?;
            report(&r, output)?;
            Ok(0)
        }
    }
}

pub async fn gameday(c: Client, cmd: GameDayCommand) -> anyhow::Result<i32> {
    let mut api = client(&c);
    match cmd {
        GameDayCommand::Run { plan, wait, output } => {
            let (yaml, experiments) = gameday_files(&plan)?;
            let run = api
                .start_game_day(StartGameDayRequest {
                    yaml,
                    file_name: display_name(&plan),
                    experiments: experiments.into_iter().collect(),
                })
                .await
                .map_err(rpc)?
                .into_inner();
            eprintln!("started game day {} ({})", run.id, run.name);
            if !wait {
                println!("{}", run.id);
                return Ok(0);
            }
            let done = follow(&mut api, &run.id).await?;
            print_run(&done, output)?;
            Ok(exit_for(&done))
        }
        GameDayCommand::Status { run, output } => {
            let r = get(&mut api, &run).await?;
            print_run(&r, output)?;
            Ok(0)
        }
        GameDayCommand::Approve { run } => {
            let r = api
                .approve_game_day(ApproveGameDayRequest { id: run })
                .await
                .map_err(rpc)?
                .into_inner();
            eprintln!("approved: {} goes on (stage {:?})", r.id, r.stage);
            Ok(0)
        }
        GameDayCommand::Note { run, text } => {
            api.note_game_day(NoteGameDayRequest {
                id: run.clone(),
                text,
            })
            .await
            .map_err(rpc)?;
            eprintln!("note added to {run}");
            Ok(0)
        }
        GameDayCommand::Abort { run, reason } => abort(&mut api, run, reason).await,
        GameDayCommand::Report { run, output } => {
            let r = get(&mut api, &run).await?;
            report(&r, output)?;
            Ok(0)
        }
    }
}

async fn get(api: &mut ExperimentServiceClient<Authed>, id: &str) -> anyhow::Result<Run> {
    Ok(api
        .get_run(GetRunRequest {
            id: id.to_string(),
            after_seq: 0,
        })
        .await
        .map_err(rpc)?
        .into_inner())
}

async fn abort(
    api: &mut ExperimentServiceClient<Authed>,
    id: String,
    reason: String,
) -> anyhow::Result<i32> {
    api.abort_run(AbortRunRequest {
        id: id.clone(),
        reason,
    })
    .await
    .map_err(rpc)?;
    // The halt reverts every fault; wait for it so the operator knows when the hosts are clean.
    let done = follow(api, &id).await?;
    eprintln!("{}: {} ({})", done.id, done.verdict, done.reason);
    let unconfirmed = done
        .faults
        .iter()
        .filter(|f| {
            matches!(
                f.state.as_str(),
                "active" | "pending" | "unknown" | "revert_failed"
            )
        })
        .count();
    if unconfirmed > 0 {
        eprintln!(
            "error: {unconfirmed} fault(s) not confirmed reverted; see `rampart fault ls --active`"
        );
        return Ok(1);
    }
    Ok(0)
}

fn exit_for(r: &Run) -> i32 {
    if r.verdict == "passed" {
        0
    } else {
        EXIT_NOT_PASSED
    }
}

/// Prints the timeline as it grows until the run finishes. On a terminal a status line is kept
/// at the bottom; piped, only plain lines are written.
async fn follow(api: &mut ExperimentServiceClient<Authed>, id: &str) -> anyhow::Result<Run> {
    let tty = std::io::stderr().is_terminal();
    let mut seen = 0i64;
    loop {
        let r = api
            .get_run(GetRunRequest {
                id: id.to_string(),
                after_seq: seen,
            })
            .await
            .map_err(rpc)?
            .into_inner();
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        for e in &r.timeline {
            let _ = writeln!(err, "{}", event_line(e));
            seen = seen.max(e.seq);
        }
        if r.state == "finished" {
            drop(err);
            return get(api, id).await;
        }
        if tty {
            let _ = write!(err, "{}", status_line(&r));
            let _ = err.flush();
        }
        drop(err);
        tokio::time::sleep(POLL).await;
    }
}
