-- EventBridge rules and Scheduler schedules (kindling-cron): each row is one schedule as JSON,
-- with the next tick it owes; written before a tick is considered delivered.
CREATE TABLE cron_schedules (
    id       TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
