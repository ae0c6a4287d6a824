-- Kindling state: event source mappings (deleted with their function), the positions that
-- stream sources (Kafka) have processed, and each function's recursive loop setting.

CREATE TABLE event_source_mappings (
    uuid          TEXT PRIMARY KEY,
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    source_arn    TEXT,
    created_ms    INTEGER NOT NULL,
    record        TEXT NOT NULL
);
CREATE INDEX event_source_mappings_by_function ON event_source_mappings (function_name);

CREATE TABLE event_source_offsets (
    mapping_uuid TEXT NOT NULL REFERENCES event_source_mappings(uuid) ON DELETE CASCADE,
    source       TEXT NOT NULL,                -- e.g. '<topic>-<partition>'
    position     INTEGER NOT NULL,             -- next record to process
    PRIMARY KEY (mapping_uuid, source)
);

CREATE TABLE function_recursion (
    function_name TEXT PRIMARY KEY REFERENCES functions(name) ON DELETE CASCADE,
    recursive_loop TEXT NOT NULL
);
