-- The console lists the newest sweeps and charts their scores.
CREATE INDEX sweeps_started ON sweeps (started_at);
