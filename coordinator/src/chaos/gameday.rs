//! Game days: experiments in stages, one stage after another. A stage may wait at an approval
//! gate, run its experiments side by side, and let a failure through (`continue_on_failure`);
//! otherwise a failed experiment stops the later stages. Aborting the game day halts every
//! experiment in it. Notes and approvals go on the same timeline as the experiments' events.

use std::sync::Arc;

use rampart_common::time::now_ms;
use rampart_proto::v1::Run;
use tracing::info;

use super::run::{event, launch};
use super::spec::{Experiment, GameDay};
use super::targets::{new_run, pick_targets};
use super::{Chaos, ChaosError, Control};

/// Records the game day and starts it.
pub async fn start(
    chaos: &Arc<Chaos>,
    day: GameDay,
    file: &str,
    yaml: &str,
    actor: &str,
) -> Result<Run, ChaosError> {
    let mut run = Run {
        file: file.into(),
        id: format!("gd-{}", hex::encode(rand::random::<[u8; 6]>())),
        kind: "gameday".into(),
        name: day.name.clone(),
        state: "running".into(),
        created_by: actor.into(),
        started_unix_ms: now_ms(),
        recovery_ms: -1,
        halt_latency_ms: -1,
        spec: yaml.into(),
        plan: day
            .stages
            .iter()
            .map(|s| {
                let mut line = format!("stage {:?}", s.name);
                if s.approval {
                    line.push_str(": approval gate");
                }
                if !s.experiments.is_empty() {
                    let names: Vec<&str> = s.experiments.iter().map(|(p, _)| p.as_str()).collect();
                    line.push_str(&format!(
                        ": {} {}",
                        if s.parallel { "in parallel" } else { "in turn" },
                        names.join(", ")
                    ));
                }
                if s.continue_on_failure {
                    line.push_str(" (continue on failure)");
                }
                line
            })
            .collect(),
        ..Default::default()
    };
    chaos.store.insert_run(&run).await?;
    let control = chaos.register(&run.id, None);
    event(
        chaos,
        &run.id,
        "stage",
        "",
        &format!(
            "game day {:?} started with {} stage(s)",
            day.name,
            day.stages.len()
        ),
        actor,
    )
    .await;
    let snapshot = run.clone();
    let chaos = chaos.clone();
    tokio::spawn(async move {
        let (verdict, reason) = execute(&chaos, &control, &mut run, &day).await;
        run.state = "finished".into();
        run.verdict = verdict.clone();
        run.reason = reason.clone();
        run.finished_unix_ms = now_ms();
        if let Err(err) = chaos.store.update_run(&run).await {
            tracing::warn!(%err, "could not save the game day");
        }
        let detail = if reason.is_empty() {
            verdict.clone()
        } else {
            format!("{verdict}: {reason}")
        };
        event(&chaos, &run.id, "verdict", "", &detail, "").await;
        chaos.unregister(&run.id);
        info!(gameday = %run.id, %verdict, "game day finished");
    });
    Ok(snapshot)
}

async fn set_state(chaos: &Chaos, run: &mut Run, state: &str, stage: &str) {
    run.state = state.into();
    run.stage = stage.into();
    if let Err(err) = chaos.store.update_run(run).await {
        tracing::warn!(%err, "could not save the game day");
    }
}

/// Runs one experiment of the game day to its verdict.
async fn one(
    chaos: &Arc<Chaos>,
    control: &Arc<Control>,
    gd: &Run,
    stage: &str,
    path: String,
    yaml: String,
    e: Experiment,
) -> (String, String) {
    let agents = match chaos.store.agents().await {
        Ok(a) => a,
        Err(err) => return ("error".into(), err.to_string()),
    };
    let targets = match pick_targets(agents, &e) {
        Ok(t) => t,
        Err(err) => {
            event(chaos, &gd.id, "error", "", &format!("{path}: {err}"), "").await;
            return ("error".into(), err.to_string());
        }
    };
    let mut run = new_run(&e, &yaml, &gd.created_by, &targets);
    run.gameday_id = gd.id.clone();
    run.stage = stage.into();
    run.file = path.clone();
    match launch(chaos, e, run, Some(control.clone())).await {
        Ok((_, handle)) => match handle.await {
            Ok(done) => (
                done.verdict,
                format!("{path} ({}): {}", done.id, done.reason),
            ),
            Err(err) => ("error".into(), format!("{path}: {err}")),
        },
        Err(err) => ("error".into(), format!("{path}: {err}")),
    }
}

async fn execute(
    chaos: &Arc<Chaos>,
    control: &Arc<Control>,
    run: &mut Run,
    day: &GameDay,
) -> (String, String) {
    let text = |path: &str| day.files.get(path).cloned().unwrap_or_default();
    let mut failures = Vec::new();
    for stage in &day.stages {
        if control.cancel.is_cancelled() {
            break;
        }
        set_state(chaos, run, "running", &stage.name).await;
        event(
            chaos,
            &run.id,
            "stage",
            "",
            &format!("stage {:?} started", stage.name),
            "",
        )
        .await;
        if stage.approval {
            set_state(chaos, run, "waiting_approval", &stage.name).await;
            event(
                chaos,
                &run.id,
                "approval",
                "",
                &format!(
                    "stage {:?} waits for `rampart gameday approve {}`",
                    stage.name, run.id
                ),
                "",
            )
            .await;
            if !control.wait_for_approval().await {
                break;
            }
            set_state(chaos, run, "running", &stage.name).await;
        }
        let run_one = |path: &String, e: &Experiment| {
            one(
                chaos,
                control,
                run,
                &stage.name,
                path.clone(),
                text(path),
                e.clone(),
            )
        };
        let results: Vec<(String, String)> = if stage.parallel {
            futures::future::join_all(stage.experiments.iter().map(|(path, e)| run_one(path, e)))
                .await
        } else {
            let mut out = Vec::new();
            for (path, e) in &stage.experiments {
                if control.cancel.is_cancelled() {
                    break;
                }
                out.push(run_one(path, e).await);
            }
            out
        };
        let failed: Vec<String> = results
            .iter()
            .filter(|(v, _)| v != "passed")
            .map(|(v, why)| format!("{v}: {why}"))
            .collect();
        if !failed.is_empty() && !control.cancel.is_cancelled() {
            failures.extend(failed.clone());
            if !stage.continue_on_failure {
                let why = format!(
                    "stage {:?}: {}; later stages skipped",
                    stage.name,
                    failed.join("; ")
                );
                event(chaos, &run.id, "stage", "", &why, "").await;
                return ("failed".into(), why);
            }
        }
    }
    if control.cancel.is_cancelled() {
        let (why, _) = control.reason().unwrap_or_else(|| {
            (
                "the coordinator is shutting down".into(),
                "coordinator".into(),
            )
        });
        return ("aborted".into(), why);
    }
    if failures.is_empty() {
        ("passed".into(), String::new())
    } else {
        ("failed".into(), failures.join("; "))
    }
}
