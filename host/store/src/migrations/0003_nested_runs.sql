-- Nested runs (agent-as-tool): the run that started a run, if any. A nested
-- run belongs to its parent's thread but adds no messages to it.
ALTER TABLE runs ADD COLUMN parent_run_id TEXT;
