//! Reading a game-day plan and the experiment files it names.

use std::collections::BTreeMap;

use super::experiment::experiment;
use super::{GameDay, SpecErrors, Stage};
use crate::yaml::load;

/// Reads a game-day plan; `experiments` maps each path the plan names to its file's text (the
/// CLI reads them relative to the plan).
pub fn gameday(
    file: &str,
    text: &str,
    experiments: &BTreeMap<String, String>,
) -> Result<GameDay, SpecErrors> {
    let (root, mut r) = load(file, text, super::LIMITS)?;
    let mut day = GameDay {
        name: String::new(),
        description: String::new(),
        stages: Vec::new(),
        files: BTreeMap::new(),
    };
    let mut nested = Vec::new();
    if let Some(map) = r.mapping(
        &root,
        "a game day",
        &["kind", "name", "description", "stages"],
        &["name", "stages"],
    ) {
        r.kind(map, "GameDay");
        day.name = r.name(map);
        day.description = r.string(map, "description").unwrap_or_default();
        for node in r.items(map, "stages") {
            let Some(s) = r.mapping(
                node,
                "a stage",
                &[
                    "name",
                    "experiments",
                    "gate",
                    "parallel",
                    "continue_on_failure",
                ],
                &["name"],
            ) else {
                continue;
            };
            let mut stage = Stage {
                name: r.string(s, "name").unwrap_or_default(),
                approval: false,
                parallel: r.number(s, "parallel", "true or false").unwrap_or(false),
                continue_on_failure: r
                    .number(s, "continue_on_failure", "true or false")
                    .unwrap_or(false),
                experiments: Vec::new(),
            };
            if let Some(g) = s.get_scalar("gate") {
                if g.as_str() == "approval" {
                    stage.approval = true;
                } else {
                    r.error_at(
                        g.span(),
                        format!("unknown gate {:?}; the gate is `approval`", g.as_str()),
                    );
                }
            }
            for e in r.items(s, "experiments") {
                let Some(path) = e.as_scalar() else {
                    r.error_at(e.span(), "an experiment is the path of its file");
                    continue;
                };
                match experiments.get(path.as_str()) {
                    None => r.error_at(
                        path.span(),
                        format!(
                            "experiment file {:?} was not found (paths are relative to the plan)",
                            path.as_str()
                        ),
                    ),
                    Some(text) => match experiment(path.as_str(), text) {
                        Ok(x) => {
                            day.files.insert(path.as_str().to_string(), text.clone());
                            stage.experiments.push((path.as_str().to_string(), x));
                        }
                        Err(errs) => nested.extend(errs.0),
                    },
                }
            }
            if !stage.approval && stage.experiments.is_empty() && r.errors.is_empty() {
                r.error_at(
                    s.span(),
                    format!("stage {:?} has neither experiments nor a gate", stage.name),
                );
            }
            day.stages.push(stage);
        }
        if day.stages.is_empty() && map.get_node("stages").is_some() {
            r.error_at(map.span(), "a game day needs at least one stage");
        }
    }
    r.errors.extend(nested);
    r.finish(day)
}
