-- Kindling state, version 5: SQS queues and messages, SNS topics, subscriptions and pending
-- HTTP deliveries, SQS message move tasks.

CREATE TABLE sqs_queues (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT NOT NULL,
    name        TEXT NOT NULL,
    record      TEXT NOT NULL,                -- QueueRecord JSON (attributes, tags, times)
    UNIQUE (account, name)
);

-- One row per message. `seq` orders messages (FIFO order and sequence numbers); a message is
-- receivable when visible_ms <= now; `receipt` is the nonce of its latest receive.
CREATE TABLE sqs_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue_id       INTEGER NOT NULL REFERENCES sqs_queues(id) ON DELETE CASCADE,
    visible_ms     INTEGER NOT NULL,
    sent_ms        INTEGER NOT NULL,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    receipt        TEXT NOT NULL DEFAULT '',
    first_receive_ms INTEGER,
    group_id       TEXT,
    record         BLOB NOT NULL              -- NewMessage JSON
);
CREATE INDEX sqs_messages_visible ON sqs_messages (queue_id, visible_ms);
CREATE INDEX sqs_messages_group ON sqs_messages (queue_id, group_id, seq);

-- FIFO deduplication ids seen in the last five minutes.
CREATE TABLE sqs_dedup (
    queue_id     INTEGER NOT NULL REFERENCES sqs_queues(id) ON DELETE CASCADE,
    dedup_key    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    until_ms     INTEGER NOT NULL,
    PRIMARY KEY (queue_id, dedup_key)
);

CREATE TABLE sqs_move_tasks (
    handle      TEXT PRIMARY KEY,
    source_arn  TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    record      TEXT NOT NULL                 -- MoveTask JSON (status, counts)
);
CREATE INDEX sqs_move_tasks_source ON sqs_move_tasks (source_arn, started_ms);

CREATE TABLE sns_topics (
    arn     TEXT PRIMARY KEY,
    record  TEXT NOT NULL
);

CREATE TABLE sns_subscriptions (
    arn        TEXT PRIMARY KEY,
    topic_arn  TEXT NOT NULL REFERENCES sns_topics(arn) ON DELETE CASCADE,
    record     TEXT NOT NULL
);
CREATE INDEX sns_subscriptions_topic ON sns_subscriptions (topic_arn);

CREATE TABLE sns_http_deliveries (
    id             TEXT PRIMARY KEY,
    not_before_ms  INTEGER NOT NULL,
    record         TEXT NOT NULL
);
CREATE INDEX sns_http_deliveries_due ON sns_http_deliveries (not_before_ms);
