-- The event log and the messages are written and read by their primary key
-- only, in key order. As rowid tables each row cost two B-tree inserts (the
-- table and the primary-key index); clustered on the key (WITHOUT ROWID) it
-- is one, and a replay reads one contiguous range.
--
-- Dropped on the way: `messages_by_run` (runs are never deleted, retention
-- deletes only their events, so the SET NULL action it served never runs),
-- and the (owner, updated_at) index on threads, which moved an index entry on
-- every run that ended, for a listing that sorts one user's threads and is rare.

CREATE TABLE run_events_clustered (
    run_id TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    frame  TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO run_events_clustered (run_id, seq, ts, frame)
    SELECT run_id, seq, ts, frame FROM run_events;
DROP TABLE run_events;
ALTER TABLE run_events_clustered RENAME TO run_events;

CREATE TABLE messages_clustered (
    thread_id  TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content    TEXT    NOT NULL,
    run_id     TEXT    REFERENCES runs (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (thread_id, seq)
) STRICT, WITHOUT ROWID;
INSERT INTO messages_clustered (thread_id, seq, role, content, run_id, created_at)
    SELECT thread_id, seq, role, content, run_id, created_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_clustered RENAME TO messages;

DROP INDEX threads_by_owner_activity;
CREATE INDEX threads_by_owner ON threads (owner);
