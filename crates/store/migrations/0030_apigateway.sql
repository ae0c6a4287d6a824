-- Kindling state: API Gateway's APIs (HTTP APIs of v2, REST APIs of v1). Each API is one
-- versioned JSON document (its routes, integrations, resources, stages and deployments), so a
-- change is one compare-and-swap on its revision.

CREATE TABLE apigw_apis (
    api_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,                -- 'HTTP' (v2) or 'REST' (v1)
    created_ms  INTEGER NOT NULL,
    revision_id TEXT NOT NULL,
    document    TEXT NOT NULL                 -- JSON, the API crate's own shape
);
CREATE INDEX apigw_apis_by_kind ON apigw_apis (kind, created_ms, api_id);
