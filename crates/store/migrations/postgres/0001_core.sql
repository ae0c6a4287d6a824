-- Kindling state on PostgreSQL, version 1: what the `Store` trait keeps (functions, versions,
-- aliases, policies, layers, the asynchronous-invocation queue, event invoke configuration,
-- dead letters, function URLs), the code packages every node reads, and the change counter
-- that invalidates nodes' caches. Tables mirror the SQLite migrations 0001-0003 and 0031:
-- records are JSON documents of the kindling-model types (TEXT, byte for byte what SQLite
-- keeps); the columns beside them exist for keys, lookups and integrity checks.

CREATE TABLE functions (
    name        TEXT COLLATE "C" PRIMARY KEY,
    meta        TEXT NOT NULL
);

CREATE TABLE function_versions (
    function_name TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version       BIGINT NOT NULL,            -- 0 is $LATEST
    revision_id   TEXT NOT NULL,
    code_size     BIGINT NOT NULL,
    record        TEXT NOT NULL,
    PRIMARY KEY (function_name, version)
);

CREATE TABLE aliases (
    function_name   TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT COLLATE "C" NOT NULL,
    primary_version TEXT NOT NULL,
    routing_version TEXT,
    revision_id     TEXT NOT NULL,
    record          TEXT NOT NULL,
    PRIMARY KEY (function_name, name)
);

CREATE TABLE policies (
    function_name TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT COLLATE "C" NOT NULL,              -- '' for the unqualified function
    revision_id   TEXT NOT NULL,
    statements    TEXT NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);

CREATE TABLE layers (
    name          TEXT COLLATE "C" PRIMARY KEY,
    last_version  BIGINT NOT NULL
);

CREATE TABLE layer_versions (
    name      TEXT COLLATE "C" NOT NULL REFERENCES layers(name),
    version   BIGINT NOT NULL,
    deleted   BOOLEAN NOT NULL DEFAULT FALSE,
    code_size BIGINT NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE async_events (
    id             TEXT COLLATE "C" PRIMARY KEY,          -- the request id, the same on every attempt
    function_name  TEXT COLLATE "C" NOT NULL,
    qualifier      TEXT COLLATE "C" NOT NULL,             -- as invoked; '' when unqualified
    payload        BYTEA NOT NULL,
    enqueued_ms    BIGINT NOT NULL,           -- when it was accepted (event age counts from here)
    attempts       BIGINT NOT NULL DEFAULT 0, -- invocations that ran and failed
    not_before_ms  BIGINT NOT NULL,           -- earliest time of the next attempt
    lease_owner    TEXT,
    lease_until_ms BIGINT,
    last_result    TEXT,                      -- JSON of the last failed attempt
    trace_header   TEXT
);
CREATE INDEX async_events_ready ON async_events (not_before_ms);
CREATE INDEX async_events_function ON async_events (function_name, not_before_ms, enqueued_ms);
CREATE INDEX async_events_owner ON async_events (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE event_invoke_configs (
    function_name TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT COLLATE "C" NOT NULL,              -- '$LATEST', a version or an alias
    config        TEXT NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);

CREATE TABLE dead_letters (
    id          TEXT COLLATE "C" PRIMARY KEY,
    queue       TEXT COLLATE "C" NOT NULL,                -- the destination's name (an SQS queue, SNS topic...)
    created_ms  BIGINT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX dead_letters_queue ON dead_letters (queue, created_ms);

CREATE TABLE function_urls (
    url_id        TEXT COLLATE "C" PRIMARY KEY,
    function_name TEXT COLLATE "C" NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT COLLATE "C" NOT NULL,
    revision_id   TEXT NOT NULL,
    record        TEXT NOT NULL,
    UNIQUE (function_name, qualifier)
);

-- Code packages (function and layer zips), content-addressed: `id` is the lowercase hex
-- SHA-256 of the whole zip, which a node checks again when it copies one to its local cache.
-- The bytes are kept in chunks so that no single value approaches PostgreSQL's 1 GB limit.
CREATE TABLE code_blobs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    size        BIGINT NOT NULL,
    chunks      INTEGER NOT NULL
);
CREATE TABLE code_blob_chunks (
    id    TEXT NOT NULL REFERENCES code_blobs(id) ON DELETE CASCADE,
    seq   INTEGER NOT NULL,
    data  BYTEA NOT NULL,
    PRIMARY KEY (id, seq)
);

-- Every control-plane write takes the next number and announces it on the channel
-- `kindling_control` (NOTIFY, sent at commit). Each node's listener drops its caches, then
-- records here, under its connection's backend pid, the highest number it has seen; a writer
-- returns once every listening node has acknowledged its number.
CREATE SEQUENCE control_version;
CREATE TABLE control_acks (
    listener_pid INTEGER PRIMARY KEY,
    version      BIGINT NOT NULL
);
