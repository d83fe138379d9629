-- The cluster's plugins, grants and access policy: each node copies what another
-- wrote into its own home (where its watcher serves it), and writes here what changed
-- in its home. `version` orders every change of the cluster; a removal stays as a
-- row with `removed`, so a node that was away learns of it.
CREATE SEQUENCE cluster_home_version;
CREATE TABLE cluster_home (
    kind    TEXT NOT NULL,          -- 'plugin', 'grant' or 'policy'
    name    TEXT NOT NULL,          -- the plugin's name, or the policy file's
    meta    TEXT,                   -- a plugin's plugin.json
    content BYTEA,                  -- a plugin's component, a grant's or policy's text
    digest  TEXT NOT NULL,          -- what the node compares with its own copy
    removed BOOLEAN NOT NULL DEFAULT false,
    version BIGINT NOT NULL,
    node    TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX cluster_home_by_version ON cluster_home (version);
