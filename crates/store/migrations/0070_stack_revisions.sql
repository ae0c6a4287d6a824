-- Stacks' compare-and-swap revision and the node running their operation (the PostgreSQL
-- store shares them between nodes; on SQLite the one node owns every operation).
ALTER TABLE cfn_stacks ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
ALTER TABLE cfn_stacks ADD COLUMN owner TEXT;
