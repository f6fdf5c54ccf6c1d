-- netra's first schema. Times are Unix milliseconds (INTEGER). Tables are STRICT
-- so a wrongly typed value is an error instead of a silent conversion.

-- A conversation, owned by one user. `updated_at` and `message_count` are kept
-- by the store when messages are appended, so listing a user's threads reads
-- only `limit` rows of an index instead of aggregating every message.
CREATE TABLE threads (
    id            TEXT    NOT NULL PRIMARY KEY,
    owner         TEXT    NOT NULL,
    title         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX threads_by_owner_activity ON threads (owner, updated_at DESC, id DESC);

-- One run of an agent in a thread.
CREATE TABLE runs (
    id                TEXT    NOT NULL PRIMARY KEY,
    thread_id         TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    user_id           TEXT    NOT NULL,
    agent             TEXT    NOT NULL,
    plugin_version    TEXT    NOT NULL,
    status            TEXT    NOT NULL
        CHECK (status IN ('running', 'completed', 'cancelled', 'failed')),
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    error_code        TEXT,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    input             TEXT    NOT NULL,
    -- Set once retention has deleted every event of the run, so pruning never
    -- visits the run again.
    events_pruned     INTEGER NOT NULL DEFAULT 0 CHECK (events_pruned IN (0, 1)),
    CHECK ((status = 'running') = (ended_at IS NULL))
) STRICT;

CREATE INDEX runs_by_thread ON runs (thread_id);
-- Crash recovery reads the running runs at start.
CREATE INDEX runs_running ON runs (id) WHERE status = 'running';
-- Retention walks ended runs whose events are still there, oldest first.
CREATE INDEX runs_prunable ON runs (ended_at) WHERE ended_at IS NOT NULL AND events_pruned = 0;

-- The messages of a thread, numbered 1, 2, 3 ... within it.
CREATE TABLE messages (
    thread_id  TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content    TEXT    NOT NULL,
    run_id     TEXT    REFERENCES runs (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (thread_id, seq)
) STRICT;

CREATE INDEX messages_by_run ON messages (run_id);

-- The event log of a run: `frame` is the exact JSON text sent to clients.
CREATE TABLE run_events (
    run_id TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    frame  TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;

-- Plugin key-value data, scoped to (user, plugin).
CREATE TABLE kv (
    user_id    TEXT    NOT NULL,
    plugin     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, plugin, key)
) STRICT;

-- Who did what, for operators.
CREATE TABLE audit (
    id      INTEGER NOT NULL PRIMARY KEY,
    ts      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    detail  TEXT    NOT NULL CHECK (json_valid(detail))
) STRICT;

CREATE INDEX audit_by_ts ON audit (ts);
