-- Kindling state, version 1: functions, versions, aliases, policies and layers.
-- Records are JSON documents of the kindling-model types; the columns beside them exist for
-- keys, lookups and integrity checks.

CREATE TABLE functions (
    name        TEXT PRIMARY KEY,
    meta        TEXT NOT NULL
);

CREATE TABLE function_versions (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    version       INTEGER NOT NULL,           -- 0 is $LATEST
    revision_id   TEXT NOT NULL,
    code_size     INTEGER NOT NULL,
    record        TEXT NOT NULL,
    PRIMARY KEY (function_name, version)
);

CREATE TABLE aliases (
    function_name   TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    primary_version TEXT NOT NULL,
    routing_version TEXT,
    revision_id     TEXT NOT NULL,
    record          TEXT NOT NULL,
    PRIMARY KEY (function_name, name)
);

CREATE TABLE policies (
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT NOT NULL,              -- '' for the unqualified function
    revision_id   TEXT NOT NULL,
    statements    TEXT NOT NULL,
    PRIMARY KEY (function_name, qualifier)
);

CREATE TABLE layers (
    name          TEXT PRIMARY KEY,
    last_version  INTEGER NOT NULL
);

CREATE TABLE layer_versions (
    name      TEXT NOT NULL REFERENCES layers(name),
    version   INTEGER NOT NULL,
    deleted   INTEGER NOT NULL DEFAULT 0,
    code_size INTEGER NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
