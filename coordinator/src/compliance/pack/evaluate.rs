//! Evaluating a loaded pack over a host's facts: compiled (the fast path) or by the
//! interpreter, all checks at once or each on its own, timed.

use super::*;

impl Pack {
    /// Evaluates every check over `facts` (the JSON form of a `FactReport`) in one pass: the fast
    /// path, used by sweeps. Per-check times are 0; see [`Pack::evaluate_profiled`].
    pub fn evaluate(&self, facts: &serde_json::Value) -> Vec<RuleResult> {
        if let Some(reason) = self.off_target(facts) {
            return self.all_not_applicable(&reason);
        }
        self.verdicts(self.result_object(facts))
    }

    /// Like [`Pack::evaluate`], by the interpreter even when `result` is compiled: `packs test`
    /// compares the two, so a difference between regorus's two evaluators shows on the pack's
    /// own test hosts rather than in a report.
    pub fn evaluate_interpreted(&self, facts: &serde_json::Value) -> Vec<RuleResult> {
        if let Some(reason) = self.off_target(facts) {
            return self.all_not_applicable(&reason);
        }
        self.verdicts(self.interpreted_result(facts).map(Verdicts::Json))
    }

    /// Every check's verdict out of `result` (check id → verdict), or all `error`.
    fn verdicts(&self, all: Result<Verdicts, String>) -> Vec<RuleResult> {
        self.checks
            .iter()
            .map(|check| {
                let (status, evidence) = match &all {
                    Err(e) => (Status::Error, serde_json::json!({"error": e})),
                    Ok(v) => verdict_of(v.get(&check.id)),
                };
                RuleResult {
                    rule: check.id.clone(),
                    status,
                    severity: check.severity,
                    evidence,
                    micros: 0,
                }
            })
            .collect()
    }

    /// Why the pack does not apply to the host of `facts` (another distribution or version), or
    /// `None` when it does (or targets every host).
    pub fn off_target(&self, facts: &serde_json::Value) -> Option<String> {
        if self.targets.is_empty() {
            return None;
        }
        let id = facts["os"]["id"].as_str().unwrap_or_default();
        let version = facts["os"]["version_id"].as_str().unwrap_or_default();
        if self.targets.iter().any(|t| t.matches(id, version)) {
            return None;
        }
        let host = if id.is_empty() {
            "a host whose distribution is unknown (no os-release)".to_string()
        } else {
            format!("{id} {version}")
        };
        let targets: Vec<String> = self.targets.iter().map(Target::to_string).collect();
        Some(format!(
            "pack {} is written for {}; this host is {host}: its checks do not apply",
            self.name,
            targets.join(", ")
        ))
    }

    fn all_not_applicable(&self, reason: &str) -> Vec<RuleResult> {
        self.checks
            .iter()
            .map(|c| RuleResult {
                rule: c.id.clone(),
                status: Status::NotApplicable,
                severity: c.severity,
                evidence: serde_json::json!({"reason": reason}),
                micros: 0,
            })
            .collect()
    }

    /// `data.<package>.result` over `facts`: check id → verdict.
    fn result_object(&self, facts: &serde_json::Value) -> Result<Verdicts, String> {
        if let Ok(compiled) = &self.compiled
            && let Ok(all) = compiled.evaluate(self.input_value(facts))
            && let Ok(verdicts) = all.as_object()
            && !verdicts.values().any(|v| *v == regorus::Value::Undefined)
        {
            crate::web::metrics::global().pack_evaluation(&self.name, "compiled");
            return Ok(Verdicts::Engine(all));
        }
        // The interpreter is the authority whenever the compiled program fails or leaves a
        // verdict undefined: regorus 0.14's compiled rules bind an undefined value (a missing
        // fact) instead of failing, and may then overwrite another rule's verdict for that check.
        let evaluator = if self.compiled.is_ok() {
            self.fallbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(pack = %self.name, "compiled evaluation failed or left a verdict undefined; the interpreter redoes it");
            "fallback"
        } else {
            "interpreted"
        };
        crate::web::metrics::global().pack_evaluation(&self.name, evaluator);
        self.interpreted_result(facts).map(Verdicts::Json)
    }

    /// How many evaluations the interpreter redid because the compiled one left a verdict
    /// undefined (or failed) since the pack was loaded.
    pub fn interpreter_fallbacks(&self) -> u64 {
        self.fallbacks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Why the compiler refused `result` when pack.toml lets it be compiled.
    pub fn compile_refused(&self) -> Option<&str> {
        self.interpreted_because().filter(|_| self.compile)
    }

    /// Why `result` is evaluated by the interpreter rather than compiled, if it is.
    pub fn interpreted_because(&self) -> Option<&str> {
        self.compiled.as_ref().err().map(String::as_str)
    }

    /// `result` over `facts` by the interpreter, compiled or not (to compare the two).
    pub fn interpreted_result(
        &self,
        facts: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        self.with_engine(facts, |engine| {
            let empty = || serde_json::json!({});
            if self.result_is_rule {
                engine
                    .eval_rule(self.result_path.clone())
                    .map(|v| regorus_value_json(&v).unwrap_or_else(empty))
            } else {
                engine
                    .eval_query(self.result_path.clone(), false)
                    .map(|r| first_value(&r).unwrap_or_else(empty))
            }
            .map_err(|e| e.to_string())
        })
    }

    /// The ids `result` gives a verdict for over `facts`, checks or not (for `packs lint`).
    pub fn result_ids(&self, facts: &serde_json::Value) -> Vec<String> {
        self.result_object(facts)
            .map(|v| v.ids())
            .unwrap_or_default()
    }

    /// The top-level facts the pack's Rego reads; None when it uses `input` as a whole.
    pub fn reads(&self) -> Option<Vec<String>> {
        self.reads.clone()
    }

    /// Like [`Pack::evaluate`], but each check on its own, timed: shows which check is slow. Each
    /// query costs the engine's set-up again, so this is tens of times slower.
    pub fn evaluate_profiled(&self, facts: &serde_json::Value) -> Vec<RuleResult> {
        if let Some(reason) = self.off_target(facts) {
            return self.all_not_applicable(&reason);
        }
        self.with_engine(facts, |engine| self.each_check_timed(engine))
    }

    fn each_check_timed(&self, engine: &mut regorus::Engine) -> Vec<RuleResult> {
        self.checks
            .iter()
            .map(|check| {
                let start = Instant::now();
                let query = format!("data.{}.result[\"{}\"]", self.package, check.id);
                let outcome = engine.eval_query(query, false);
                let micros = start.elapsed().as_micros() as u64;
                let (status, evidence) = match outcome {
                    Err(e) => (Status::Error, serde_json::json!({"error": e.to_string()})),
                    Ok(results) => verdict_of(first_value(&results)),
                };
                RuleResult {
                    rule: check.id.clone(),
                    status,
                    severity: check.severity,
                    evidence,
                    micros,
                }
            })
            .collect()
    }

    /// Runs `f` on an engine whose input is `facts` (only the parts the pack reads).
    fn with_engine<T>(
        &self,
        facts: &serde_json::Value,
        f: impl FnOnce(&mut regorus::Engine) -> T,
    ) -> T {
        let made: Result<T, std::convert::Infallible> =
            self.idle
                .with(|| Ok(self.engine.clone()), self.input_value(facts), f);
        let Ok(out) = made;
        out
    }

    /// `facts` as the engine's input: only the parts the pack reads.
    pub fn input_value(&self, facts: &serde_json::Value) -> regorus::Value {
        crate::compliance::input::input(self.reads.as_deref(), facts)
    }
}

/// `result` (check id → verdict) as the compiled program left it, or as JSON from the
/// interpreter. Each verdict is made JSON on its own when read: the whole object made JSON, then
/// each verdict copied out of it, cost about 7 % of a CIS pack's evaluation.
enum Verdicts {
    Engine(regorus::Value),
    Json(serde_json::Value),
}

impl Verdicts {
    fn get(&self, id: &str) -> Option<serde_json::Value> {
        match self {
            Verdicts::Engine(all) => all
                .as_object()
                .ok()?
                .get(&regorus::Value::from(id))
                .and_then(regorus_value_json),
            Verdicts::Json(all) => all.get(id).cloned(),
        }
    }

    fn ids(&self) -> Vec<String> {
        match self {
            Verdicts::Engine(all) => all
                .as_object()
                .map(|o| {
                    o.keys()
                        .filter_map(|k| k.as_string().ok())
                        .map(|k| k.to_string())
                        .collect()
                })
                .unwrap_or_default(),
            Verdicts::Json(all) => all
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Reads one check's `{"status", "evidence"}`; an undefined or malformed verdict is an error.
fn verdict_of(v: Option<serde_json::Value>) -> (Status, serde_json::Value) {
    match v {
        None => (
            Status::Error,
            serde_json::json!({"error": "the check gave no verdict: a fact it needs is missing or malformed"}),
        ),
        Some(v) => match serde_json::from_value::<Status>(v["status"].clone()) {
            Ok(s) => (s, v["evidence"].clone()),
            Err(_) => (
                Status::Error,
                serde_json::json!({"error": "the check's verdict has no valid status", "verdict": v}),
            ),
        },
    }
}
