-- The audit log: one hash chain for the whole cluster. Appends take the advisory
-- lock of `audit_append` (see host/audit/src/postgres.rs), so two nodes never
-- read the same head; the primary key on seq is the backstop.
CREATE TABLE audit_records (
    seq       BIGINT PRIMARY KEY,
    time      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    principal TEXT NOT NULL,
    plugin    TEXT,
    tool      TEXT,
    outcome   TEXT,
    fields    TEXT NOT NULL,
    prev      TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_plugin_tool ON audit_records (plugin, tool);
CREATE INDEX audit_records_kind ON audit_records (kind);
CREATE INDEX audit_records_principal ON audit_records (principal);
CREATE INDEX audit_records_outcome ON audit_records (outcome);
CREATE TABLE audit_checkpoints (
    id         BIGSERIAL PRIMARY KEY,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    time       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    public_key TEXT NOT NULL
);
CREATE TABLE audit_anchors (
    seq  BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    time TEXT NOT NULL
);

-- Model budgets: settled usage per account and day, and the holds of calls in flight.
CREATE TABLE budget_accounts (
    scope  TEXT NOT NULL,
    name   TEXT NOT NULL,
    day    BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    cost   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, name, day)
);
CREATE TABLE budget_holds (
    scope       TEXT NOT NULL,
    name        TEXT NOT NULL,
    day         BIGINT NOT NULL,
    reservation BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    tokens      BIGINT NOT NULL,
    cost        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, name, day, reservation)
);

-- Memory: key-value entries with an expiry, documents with full-text search
-- (PostgreSQL's own, the `english` configuration), and their embeddings.
CREATE TABLE memory_kv (
    namespace    TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        BYTEA NOT NULL,
    content_type TEXT NOT NULL,
    expires_at   BIGINT,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE memory_docs (
    namespace TEXT NOT NULL,
    id        TEXT NOT NULL,
    text      TEXT NOT NULL,
    metadata  TEXT NOT NULL,
    tsv       TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX memory_docs_tsv ON memory_docs USING GIN (tsv);
CREATE TABLE memory_vectors (
    namespace TEXT NOT NULL,
    id        TEXT NOT NULL,
    target    TEXT NOT NULL,
    vector    REAL[] NOT NULL,
    PRIMARY KEY (namespace, id),
    FOREIGN KEY (namespace, id) REFERENCES memory_docs (namespace, id) ON DELETE CASCADE
);
