-- Threat models as applied, every version kept (the latest is the one in force).
CREATE TABLE threat_models (
    version     INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    yaml        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    applied_at  INTEGER NOT NULL,
    applied_by  TEXT NOT NULL
);
-- Evidence lookups: a pack's results by rule, an experiment's runs by name.
CREATE INDEX sweeps_pack ON sweeps (pack, started_at);
CREATE INDEX sweep_results_rule ON sweep_results (rule);
CREATE INDEX chaos_runs_name ON chaos_runs (name, started_at);
