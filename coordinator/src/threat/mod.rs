//! The threat model: a YAML file (kept in git) read and checked (`parse.rs`, into `model.rs`),
//! built-in rules that find precise weaknesses (`rules.rs`), OWASP risk rating (`risk.rs`),
//! residual risk from the fleet's live evidence (`evidence.rs`, `assess.rs`), and the views of it:
//! data-flow diagrams (`diagram.rs`), reports (`report.rs`), model diffs (`diff.rs`), and
//! OWASP Threat Dragon / Open Threat Model import and export (`import.rs`, `otm.rs`).

pub mod assess;
pub mod diagram;
pub mod diff;
pub mod evidence;
pub mod import;
pub mod model;
pub mod otm;
pub mod parse;
mod refs;
pub mod report;
pub mod risk;
pub mod rules;
#[cfg(test)]
mod tests;
pub mod write;

use rampart_common::time::now_ms;
use rampart_proto::v1::Assessment;

use crate::store::{Store, StoreError, ThreatModelRecord};

pub use parse::model as parse_model;

/// A stored version assessed with the evidence in the store now.
pub async fn assess_stored(
    store: &Store,
    rec: &ThreatModelRecord,
) -> Result<Assessment, StoreError> {
    // Stored models were checked when applied; a parse failure means the rules changed since
    // (a rule a mitigation cites was removed): the model is reported empty with the reason.
    let model = match parse_model("applied model", &rec.yaml) {
        Ok(m) => m,
        Err(errs) => {
            return Err(StoreError::Corrupt {
                what: "threat model",
                detail: errs.to_string(),
            });
        }
    };
    let mut a = assess_now(store, &model).await?;
    a.version = rec.version;
    a.applied_at_unix_ms = rec.applied_at;
    a.applied_by = rec.applied_by.clone();
    a.yaml = rec.yaml.clone();
    Ok(a)
}

/// A checked model assessed with the evidence in the store now.
pub async fn assess_now(store: &Store, model: &model::Model) -> Result<Assessment, StoreError> {
    let now = now_ms();
    let ev = evidence::gather(store, model, now).await?;
    Ok(assess::assess(model, &ev))
}
