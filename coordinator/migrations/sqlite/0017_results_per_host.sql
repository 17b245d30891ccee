-- SQLite form; the PostgreSQL migration of the same name matches it.
-- A host's results in a sweep are kept with the host: one JSON array of {rule, status, severity,
-- micros, evidence, waiver} ordered by rule (evidence and waiver are JSON as written), with the
-- count of each status beside it for lists and scores. A 10,000-host sweep writes 10,000 rows
-- instead of 520,000 rows under three indexes and a foreign key.
ALTER TABLE sweep_hosts ADD COLUMN results TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sweep_hosts ADD COLUMN n_pass INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sweep_hosts ADD COLUMN n_fail INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sweep_hosts ADD COLUMN n_error INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sweep_hosts ADD COLUMN n_not_applicable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sweep_hosts ADD COLUMN n_waived INTEGER NOT NULL DEFAULT 0;

UPDATE sweep_hosts SET
  results = COALESCE((
    SELECT json_group_array(json_object(
             'rule', r.rule, 'status', r.status, 'severity', r.severity, 'micros', r.micros,
             'evidence', json(r.evidence), 'waiver', json(r.waiver)) ORDER BY r.rule)
    FROM sweep_results r
    WHERE r.sweep_id = sweep_hosts.sweep_id AND r.agent_id = sweep_hosts.agent_id), '[]'),
  n_pass = (SELECT COUNT(*) FROM sweep_results r
            WHERE r.sweep_id = sweep_hosts.sweep_id AND r.agent_id = sweep_hosts.agent_id AND r.status = 'pass'),
  n_fail = (SELECT COUNT(*) FROM sweep_results r
            WHERE r.sweep_id = sweep_hosts.sweep_id AND r.agent_id = sweep_hosts.agent_id AND r.status = 'fail'),
  n_error = (SELECT COUNT(*) FROM sweep_results r
             WHERE r.sweep_id = sweep_hosts.sweep_id AND r.agent_id = sweep_hosts.agent_id AND r.status = 'error'),
  n_not_applicable = (SELECT COUNT(*) FROM sweep_results r
                      WHERE r.sweep_id = sweep_hosts.sweep_id AND r.agent_id = sweep_hosts.agent_id AND r.status = 'not_applicable'),
  n_waived = (SELECT COUNT(*) FROM sweep_results r
              WHERE r.sweep_id = sweep_hosts.sweep_id AND r.agent_id = sweep_hosts.agent_id AND r.status = 'waived');

DROP TABLE sweep_results;
-- A host's history (status, drift) reads its rows across sweeps.
CREATE INDEX sweep_hosts_agent ON sweep_hosts (agent_id);
