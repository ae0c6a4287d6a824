-- Kindling state on PostgreSQL: the application services' tables (the same shape as SQLite's
-- migrations 0004, 0005, 0030, 0040, 0012 and 0013). Records are JSON text written and read
-- whole by the store; the columns beside them are what queries filter and order on. Text
-- keys that listings order by compare as bytes (COLLATE "C"), as SQLite's do.

-- SQS queues and messages. `seq` orders messages (FIFO order, sequence numbers); a message
-- is receivable when visible_ms <= now; `receipt` is the nonce of its latest receive.
CREATE TABLE sqs_queues (
    id          BIGSERIAL PRIMARY KEY,
    account     TEXT COLLATE "C" NOT NULL,
    name        TEXT COLLATE "C" NOT NULL,
    record      TEXT NOT NULL,
    UNIQUE (account, name)
);

CREATE TABLE sqs_messages (
    seq              BIGSERIAL PRIMARY KEY,
    queue_id         BIGINT NOT NULL REFERENCES sqs_queues(id) ON DELETE CASCADE,
    visible_ms       BIGINT NOT NULL,
    sent_ms          BIGINT NOT NULL,
    receive_count    INTEGER NOT NULL DEFAULT 0,
    receipt          TEXT NOT NULL DEFAULT '',
    first_receive_ms BIGINT,
    group_id         TEXT,
    record           TEXT NOT NULL
);
CREATE INDEX sqs_messages_visible ON sqs_messages (queue_id, visible_ms, seq);
CREATE INDEX sqs_messages_group ON sqs_messages (queue_id, group_id, seq);

-- FIFO deduplication ids within their window; the key is claimed before the message is
-- inserted, so that two nodes sending the same id at once store one message.
CREATE TABLE sqs_dedup (
    queue_id     BIGINT NOT NULL REFERENCES sqs_queues(id) ON DELETE CASCADE,
    dedup_key    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    until_ms     BIGINT NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
);

CREATE TABLE sqs_move_tasks (
    handle      TEXT PRIMARY KEY,
    source_arn  TEXT NOT NULL,
    started_ms  BIGINT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX sqs_move_tasks_source ON sqs_move_tasks (source_arn, started_ms);

-- SNS. `seq` keeps subscriptions in creation order (SQLite's rowid).
CREATE TABLE sns_topics (
    arn     TEXT COLLATE "C" PRIMARY KEY,
    record  TEXT NOT NULL
);

CREATE TABLE sns_subscriptions (
    seq        BIGSERIAL NOT NULL,
    arn        TEXT PRIMARY KEY,
    topic_arn  TEXT NOT NULL REFERENCES sns_topics(arn) ON DELETE CASCADE,
    record     TEXT NOT NULL
);
CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic_arn, seq);

CREATE TABLE sns_http_deliveries (
    id             TEXT PRIMARY KEY,
    not_before_ms  BIGINT NOT NULL,
    record         TEXT NOT NULL
);
CREATE INDEX sns_http_deliveries_due ON sns_http_deliveries (not_before_ms);

-- The S3-compatible object store's metadata (the bytes are files of the node that stored
-- them, named by blob id). Keys are bytea: they compare as bytes, S3's listing order.
CREATE TABLE s3_buckets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    record     TEXT NOT NULL
);

CREATE TABLE s3_objects (
    bucket  TEXT NOT NULL REFERENCES s3_buckets(name),
    key     BYTEA NOT NULL,
    blob    TEXT NOT NULL UNIQUE,
    record  TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
);

CREATE TABLE s3_uploads (
    upload_id    TEXT COLLATE "C" PRIMARY KEY,
    bucket       TEXT NOT NULL REFERENCES s3_buckets(name),
    key          BYTEA NOT NULL,
    initiated_ms BIGINT NOT NULL,
    record       TEXT NOT NULL
);
CREATE INDEX s3_uploads_by_key ON s3_uploads (bucket, key, upload_id);

CREATE TABLE s3_parts (
    upload_id   TEXT NOT NULL REFERENCES s3_uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    blob        TEXT NOT NULL UNIQUE,
    record      TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- API Gateway: one versioned document per API.
CREATE TABLE apigw_apis (
    api_id      TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    revision_id TEXT NOT NULL,
    document    TEXT NOT NULL
);
CREATE INDEX apigw_apis_by_kind ON apigw_apis (kind, created_ms, api_id);

-- Event source mappings (deleted with their function), stream positions, RecursiveLoop.
CREATE TABLE event_source_mappings (
    uuid          TEXT COLLATE "C" PRIMARY KEY,
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    source_arn    TEXT,
    created_ms    BIGINT NOT NULL,
    record        TEXT NOT NULL
);
CREATE INDEX event_source_mappings_by_function ON event_source_mappings (function_name);

CREATE TABLE event_source_offsets (
    mapping_uuid TEXT NOT NULL REFERENCES event_source_mappings(uuid) ON DELETE CASCADE,
    source       TEXT COLLATE "C" NOT NULL,
    position     BIGINT NOT NULL,
    PRIMARY KEY (mapping_uuid, source)
);

CREATE TABLE function_recursion (
    function_name  TEXT PRIMARY KEY REFERENCES functions(name) ON DELETE CASCADE,
    recursive_loop TEXT NOT NULL
);

-- CloudFormation stacks, their events and change sets. `seq` keeps stacks in creation order.
CREATE TABLE cfn_stacks (
    seq        BIGSERIAL NOT NULL,
    stack_id   TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    status     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    document   TEXT NOT NULL
);
CREATE INDEX cfn_stacks_by_name ON cfn_stacks (name);

CREATE TABLE cfn_stack_events (
    seq      BIGSERIAL PRIMARY KEY,
    stack_id TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX cfn_stack_events_by_stack ON cfn_stack_events (stack_id, seq);

CREATE TABLE cfn_change_sets (
    change_set_id TEXT COLLATE "C" PRIMARY KEY,
    stack_id      TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    document      TEXT NOT NULL
);
CREATE INDEX cfn_change_sets_by_stack ON cfn_change_sets (stack_id);

-- EventBridge rules and Scheduler schedules.
CREATE TABLE cron_schedules (
    id       TEXT COLLATE "C" PRIMARY KEY,
    document TEXT NOT NULL
);
