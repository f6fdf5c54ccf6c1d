-- The plugin registry: every version of a plugin the host has seen (loaded
-- from the plugins directory or uploaded), which one is active, and whether
-- the plugin is enabled. Versions are named by the digest of their component,
-- so the same bytes are one version however often they arrive. Times are
-- Unix milliseconds, as everywhere.

CREATE TABLE plugin_versions (
    plugin       TEXT    NOT NULL,
    -- "sha256:<64 hex>" of the component.
    digest       TEXT    NOT NULL,
    -- The manifest's version, if the plugin has a manifest.
    version      TEXT,
    kind         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL,
    -- The last time this version became the active one.
    activated_at INTEGER,
    PRIMARY KEY (plugin, digest)
) STRICT;

-- Which version of a plugin is active and whether the plugin is enabled. A
-- plugin gets its row when a version of it is first activated or it is first
-- enabled or disabled. The foreign key (not checked while `active` is NULL)
-- keeps the active version from being deleted, whatever the code above does.
CREATE TABLE plugin_state (
    plugin     TEXT    NOT NULL PRIMARY KEY,
    active     TEXT,
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    updated_at INTEGER NOT NULL,
    FOREIGN KEY (plugin, active) REFERENCES plugin_versions (plugin, digest)
) STRICT;
