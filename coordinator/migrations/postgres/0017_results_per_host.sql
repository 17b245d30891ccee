-- PostgreSQL form of the SQLite migration of the same name.
-- A host's results in a sweep are kept with the host: one JSON array of {rule, status, severity,
-- micros, evidence, waiver} ordered by rule (evidence and waiver are JSON as written), with the
-- count of each status beside it for lists and scores. A 10,000-host sweep writes 10,000 rows
-- instead of 520,000 rows under three indexes and a foreign key.
ALTER TABLE sweep_hosts
  ADD COLUMN results TEXT NOT NULL DEFAULT '[]',
  ADD COLUMN n_pass BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN n_fail BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN n_error BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN n_not_applicable BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN n_waived BIGINT NOT NULL DEFAULT 0;

UPDATE sweep_hosts h SET
  results = r.results,
  n_pass = r.n_pass,
  n_fail = r.n_fail,
  n_error = r.n_error,
  n_not_applicable = r.n_not_applicable,
  n_waived = r.n_waived
FROM (
  SELECT sweep_id, agent_id,
    json_agg(json_build_object(
      'rule', rule, 'status', status, 'severity', severity, 'micros', micros,
      'evidence', evidence::json, 'waiver', waiver::json) ORDER BY rule)::text AS results,
    COUNT(*) FILTER (WHERE status = 'pass') AS n_pass,
    COUNT(*) FILTER (WHERE status = 'fail') AS n_fail,
    COUNT(*) FILTER (WHERE status = 'error') AS n_error,
    COUNT(*) FILTER (WHERE status = 'not_applicable') AS n_not_applicable,
    COUNT(*) FILTER (WHERE status = 'waived') AS n_waived
  FROM sweep_results GROUP BY sweep_id, agent_id
) r
WHERE h.sweep_id = r.sweep_id AND h.agent_id = r.agent_id;

DROP TABLE sweep_results;
-- A host's history (status, drift) reads its rows across sweeps.
CREATE INDEX sweep_hosts_agent ON sweep_hosts (agent_id);
