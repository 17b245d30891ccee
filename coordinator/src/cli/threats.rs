//! `rampart threats …`: the threat model from the command line. `validate`, `rules`, `import`,
//! `diff OLD NEW` and the file forms of `diagram` and `export` work offline; the rest ask the
//! coordinator, which assesses the applied model with the fleet's latest evidence.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use rampart_common::time::now_ms;
use rampart_proto::v1::threat_service_client::ThreatServiceClient;
use rampart_proto::v1::{ApplyModelRequest, Assessment, GetAssessmentRequest};

use super::threats_view::{print_diff, print_register};
use super::{Authed, Client, rpc, usage};
use crate::threat::{self, model::Model, risk::Severity};

/// Exit status of `threats diff` when a new open (unmitigated or unproven) high or critical risk
/// appears.
pub const EXIT_NEW_RISK: i32 = 7;
/// Exit status of `threats validate` when the model has errors.
pub const EXIT_INVALID: i32 = 1;

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
    Markdown,
    Sarif,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum TextFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum DiagramFormat {
    #[default]
    Svg,
    Dot,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum ReportFormat {
    #[default]
    Markdown,
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImportFormat {
    /// OWASP Threat Dragon v2 JSON.
    ThreatDragon,
    /// Open Threat Model 0.2 JSON.
    Otm,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// Open Threat Model 0.2 JSON.
    Otm,
}

#[derive(Debug, Subcommand)]
pub enum ThreatsCommand {
    /// Check a model file; print every error as file:line:col (exit 1), or a summary.
    Validate { file: PathBuf },
    /// Apply a model file as a new version (operator role; the previous versions are kept) and
    /// print its risks. With --dry-run (viewer role) nothing is stored: the risks it would have
    /// and what changes against the applied version.
    Apply {
        file: PathBuf,
        /// Assess the file against the live evidence and compare it with the applied version;
        /// store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: TextFormat,
    },
    /// The risk register of the applied model, highest residual severity first.
    Ls {
        /// Only risks whose residual severity is at least this (note, low, medium, high, critical).
        #[arg(long, value_name = "SEVERITY")]
        min_severity: Option<String>,
        /// Each risk's OWASP factors and each control's per-host evidence (with -o json).
        #[arg(long)]
        detail: bool,
        /// An older version instead of the applied one.
        #[arg(long)]
        version: Option<u32>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: ListFormat,
    },
    /// One risk's evidence chain: threat → mitigations → controls and experiments → hosts →
    /// latest results, and why its residual risk is what it is.
    Show {
        /// A threat id, or rule:RULE@ELEMENT.
        id: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: TextFormat,
    },
    /// Risks that appear, go away or change between two models. Exit 7 when a new open
    /// (unmitigated or unproven) high or critical risk appears — for CI. OLD NEW are files,
    /// assessed offline (only manual evidence counts); --applied FILE compares the applied
    /// model with FILE, both assessed by the coordinator with live evidence.
    Diff {
        /// OLD NEW, or FILE with --applied.
        #[arg(required = true, num_args = 1..=2)]
        files: Vec<PathBuf>,
        /// Compare the coordinator's applied model with FILE (viewer role).
        #[arg(long)]
        applied: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: TextFormat,
    },
    /// The data-flow diagram with nested boundaries, as SVG (rendered here, no Graphviz needed)
    /// or DOT. Of FILE, or of the applied model coloured by residual risk.
    Diagram {
        file: Option<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: DiagramFormat,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The applied model's risk register with every risk's evidence, as Markdown or a
    /// self-contained HTML page.
    Report {
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: ReportFormat,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Convert another tool's model into a Rampart model file (printed, or written with --out);
    /// what could not be carried over is listed at its top.
    Import {
        /// The source format.
        #[arg(long, visible_alias = "format", value_enum)]
        from: ImportFormat,
        file: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A model as Open Threat Model JSON: FILE, or the applied model.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        file: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The built-in rules: id, STRIDE category, references, title (Markdown: the full text of
    /// docs/threat-rules.md).
    Rules {
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: ReportFormat,
    },
}

impl ThreatsCommand {
    /// Commands that never need the coordinator.
    pub fn is_local(&self) -> bool {
        match self {
            ThreatsCommand::Validate { .. }
            | ThreatsCommand::Rules { .. }
            | ThreatsCommand::Import { .. } => true,
            ThreatsCommand::Diff { applied, .. } => !applied,
            ThreatsCommand::Diagram { file, .. } | ThreatsCommand::Export { file, .. } => {
                file.is_some()
            }
            _ => false,
        }
    }

    /// Checks what can be checked before dialling the coordinator.
    pub fn precheck(&self) -> anyhow::Result<()> {
        match self {
            ThreatsCommand::Ls {
                min_severity: Some(s),
                ..
            } => min_severity(s).map(drop),
            ThreatsCommand::Apply { file, .. } => checked(file).map(drop),
            ThreatsCommand::Diff {
                files,
                applied: true,
                ..
            } => {
                if files.len() != 1 {
                    return Err(usage("diff --applied takes one FILE"));
                }
                checked(&files[0]).map(drop)
            }
            _ => Ok(()),
        }
    }
}

fn min_severity(s: &str) -> anyhow::Result<Severity> {
    Severity::parse(s).ok_or_else(|| {
        usage(format!(
            "--min-severity must be one of {}, not {s:?}",
            Severity::NAMES.join(", ")
        ))
    })
}

fn read(path: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > 64 * 1024 * 1024 {
        return Err(usage(format!(
            "{} is {} bytes; that is not a model file",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A model file's text and model, once it has no error (all of them are the usage error).
fn checked(path: &Path) -> anyhow::Result<(String, Model)> {
    let text = read(path)?;
    match threat::parse_model(&path.display().to_string(), &text) {
        Ok(m) => Ok((text, m)),
        Err(errs) => Err(usage(format!(
            "{errs}\n{} problem(s) in {}",
            errs.0.len(),
            path.display()
        ))),
    }
}

fn emit(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(p) => {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))?;
            eprintln!("wrote {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

pub(super) fn json(v: &impl serde::Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

/// An offline assessment: no hosts, no results, no runs; only manual evidence counts.
fn offline(m: &Model) -> Assessment {
    let ev = threat::evidence::Evidence {
        now_ms: now_ms(),
        ..Default::default()
    };
    threat::assess::assess(m, &ev)
}

/// Runs the commands that need no coordinator.
pub fn local(cmd: ThreatsCommand) -> anyhow::Result<i32> {
    match cmd {
        ThreatsCommand::Validate { file } => {
            let text = read(&file)?;
            match threat::parse_model(&file.display().to_string(), &text) {
                Ok(m) => {
                    let a = offline(&m);
                    println!(
                        "{}: threat model {:?} is valid: {} asset(s), {} boundary(ies), {} component(s), {} actor(s), {} flow(s), {} threat(s), {} mitigation(s); the rules find {} risk(s) ({} excluded)",
                        file.display(),
                        m.name,
                        m.assets.len(),
                        m.boundaries.len(),
                        m.components.len(),
                        m.actors.len(),
                        m.flows.len(),
                        m.threats.len(),
                        m.mitigations.len(),
                        a.risks.len() - m.threats.len(),
                        a.excluded_findings
                    );
                    Ok(0)
                }
                Err(errs) => {
                    eprintln!("{errs}");
                    eprintln!(
                        "error: {} problem(s) in {}; it cannot be applied",
                        errs.0.len(),
                        file.display()
                    );
                    Ok(EXIT_INVALID)
                }
            }
        }
        ThreatsCommand::Rules { output } => {
            match output {
                ReportFormat::Markdown => print!("{}", threat::rules::markdown()),
                ReportFormat::Html => {
                    return Err(usage(
                        "rules: -o markdown only (it is docs/threat-rules.md)",
                    ));
                }
            }
            Ok(0)
        }
        ThreatsCommand::Import { from, file, out } => {
            let text = read(&file)?;
            let (model, notes) = match from {
                ImportFormat::ThreatDragon => threat::import::threat_dragon(&text),
                ImportFormat::Otm => threat::otm::import(&text),
            }
            .map_err(|e| usage(format!("{}: {e}", file.display())))?;
            let mut header = format!(
                "Imported from {} by `rampart threats import`.",
                file.display()
            );
            for n in &notes {
                header.push_str(&format!("\nnote: {n}"));
            }
            let yaml = threat::write::yaml(&model, &header);
            // What is written must read back: an import that cannot be applied is a bug here.
            if let Err(errs) = threat::parse_model("imported model", &yaml) {
                anyhow::bail!("the imported model does not validate:\n{errs}");
            }
            for n in &notes {
                eprintln!("note: {n}");
            }
            emit(out.as_deref(), &yaml)?;
            Ok(0)
        }
        ThreatsCommand::Export { file, out, .. } => {
            let path = file.ok_or_else(|| usage("export FILE"))?;
            let (_, m) = checked(&path)?;
            emit(out.as_deref(), &json(&threat::otm::export(&m))?)?;
            Ok(0)
        }
        ThreatsCommand::Diagram { file, output, out } => {
            let path = file.ok_or_else(|| usage("diagram FILE"))?;
            let (_, m) = checked(&path)?;
            emit(out.as_deref(), &diagram(&m, None, output))?;
            Ok(0)
        }
        ThreatsCommand::Diff { files, output, .. } => {
            if files.len() != 2 {
                return Err(usage("diff OLD NEW (two files), or diff --applied FILE"));
            }
            let (_, old) = checked(&files[0])?;
            let (_, new) = checked(&files[1])?;
            print_diff(&offline(&old), &offline(&new), output)
        }
        _ => unreachable!("only local commands reach here"),
    }
}

fn diagram(m: &Model, a: Option<&Assessment>, f: DiagramFormat) -> String {
    match f {
        DiagramFormat::Svg => threat::diagram::svg(m, a),
        DiagramFormat::Dot => threat::diagram::dot(m, a),
    }
}

fn client(c: &Client) -> ThreatServiceClient<Authed> {
    ThreatServiceClient::with_interceptor(c.channel.clone(), c.bearer.clone())
        .max_decoding_message_size(rampart_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(rampart_proto::MAX_MESSAGE_BYTES)
}

async fn applied(
    api: &mut ThreatServiceClient<Authed>,
    view: GetAssessmentRequest,
) -> anyhow::Result<Assessment> {
    Ok(api.get_assessment(view).await.map_err(rpc)?.into_inner())
}

/// The applied model with its file text, for diagrams, reports and exports.
async fn applied_with_yaml(api: &mut ThreatServiceClient<Authed>) -> anyhow::Result<Assessment> {
    applied(
        api,
        GetAssessmentRequest {
            include_yaml: true,
            ..Default::default()
        },
    )
    .await
}

fn applied_model(a: &Assessment) -> anyhow::Result<Model> {
    threat::parse_model("applied model", &a.yaml)
        .map_err(|e| anyhow::anyhow!("the applied model no longer validates here: {e}"))
}

/// Runs the commands that need the coordinator.
pub async fn remote(c: Client, cmd: ThreatsCommand) -> anyhow::Result<i32> {
    let mut api = client(&c);
    match cmd {
        ThreatsCommand::Apply {
            file,
            dry_run,
            output,
        } => {
            let (text, _) = checked(&file)?;
            let r = api
                .apply_model(ApplyModelRequest {
                    yaml: text,
                    file_name: file.display().to_string(),
                    dry_run,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            let a = r.assessment.unwrap_or_default();
            if output == TextFormat::Json {
                print!(
                    "{}",
                    json(&serde_json::json!({
                        "version": r.version, "dry_run": dry_run, "assessment": a, "previous": r.previous,
                    }))?
                );
                return Ok(0);
            }
            print_register(&a);
            match (&r.previous, dry_run) {
                (Some(prev), true) => {
                    println!("\nagainst the applied version {}:", prev.version);
                    print_diff(prev, &a, TextFormat::Text)?;
                    println!("dry run: nothing was applied");
                }
                (None, true) => {
                    println!("\ndry run: nothing was applied (no model is applied yet)")
                }
                (_, false) => println!(
                    "\napplied {} as version {}{}",
                    file.display(),
                    r.version,
                    if r.previous_version > 0 {
                        format!(" (version {} kept)", r.previous_version)
                    } else {
                        String::new()
                    }
                ),
            }
            Ok(0)
        }
        ThreatsCommand::Ls {
            min_severity: min,
            detail,
            version,
            output,
        } => {
            if let Some(m) = &min {
                min_severity(m)?;
            }
            let a = applied(
                &mut api,
                GetAssessmentRequest {
                    version: version.unwrap_or(0),
                    min_severity: min.unwrap_or_default(),
                    detail,
                    ..Default::default()
                },
            )
            .await?;
            if a.risks_omitted > 0 {
                eprintln!(
                    "note: {} lower risk(s) left out to keep the answer within the message bound; use --min-severity",
                    a.risks_omitted
                );
            }
            match output {
                ListFormat::Table => print_register(&a),
                ListFormat::Json => print!("{}", json(&a)?),
                ListFormat::Markdown => print!("{}", threat::report::markdown(&a)),
                ListFormat::Sarif => print!("{}", json(&threat::report::sarif(&a))?),
            }
            Ok(0)
        }
        ThreatsCommand::Show { id, output } => {
            let one = applied(
                &mut api,
                GetAssessmentRequest {
                    risk_ids: vec![id.clone()],
                    detail: true,
                    ..Default::default()
                },
            )
            .await?;
            if let Some(r) = one.risks.first() {
                match output {
                    TextFormat::Json => print!("{}", json(r)?),
                    TextFormat::Text => print!("{}", threat::report::chain(r)),
                }
                return Ok(0);
            }
            let a = applied(&mut api, GetAssessmentRequest::default()).await?;
            let near: Vec<&str> = a
                .risks
                .iter()
                .map(|r| r.id.as_str())
                .filter(|r| r.contains(id.trim_start_matches("rule:")))
                .take(5)
                .collect();
            Err(anyhow::anyhow!(
                "no risk {id:?} in model {:?} version {}{}",
                a.model,
                a.version,
                if near.is_empty() {
                    "; `rampart threats ls` lists them".to_string()
                } else {
                    format!("; did you mean: {}", near.join(", "))
                }
            ))
        }
        ThreatsCommand::Diff { files, output, .. } => {
            let (text, _) = checked(&files[0])?;
            let r = api
                .apply_model(ApplyModelRequest {
                    yaml: text,
                    file_name: files[0].display().to_string(),
                    dry_run: true,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            let prev = r.previous.ok_or_else(|| {
                anyhow::anyhow!("no threat model has been applied to compare with")
            })?;
            print_diff(&prev, &r.assessment.unwrap_or_default(), output)
        }
        ThreatsCommand::Diagram { output, out, .. } => {
            let a = applied_with_yaml(&mut api).await?;
            let m = applied_model(&a)?;
            emit(out.as_deref(), &diagram(&m, Some(&a), output))?;
            Ok(0)
        }
        ThreatsCommand::Report { output, out } => {
            let a = applied_with_yaml(&mut api).await?;
            let text = match output {
                ReportFormat::Markdown => threat::report::markdown(&a),
                ReportFormat::Html => threat::report::html(&a, applied_model(&a).ok().as_ref()),
            };
            emit(out.as_deref(), &text)?;
            Ok(0)
        }
        ThreatsCommand::Export { out, .. } => {
            let a = applied_with_yaml(&mut api).await?;
            let m = applied_model(&a)?;
            emit(out.as_deref(), &json(&threat::otm::export(&m))?)?;
            Ok(0)
        }
        local_cmd => local(local_cmd),
    }
}
