-- Kindling state: the S3-compatible object store's metadata (the bytes are files under
-- <data-dir>/s3/, named by blob id).
-- Keys are BLOBs so that they sort by their UTF-8 bytes, S3's listing order, and prefix
-- ranges are plain byte ranges.

CREATE TABLE s3_buckets (
    name       TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    record     TEXT NOT NULL                  -- JSON BucketRecord (configuration included)
);

CREATE TABLE s3_objects (
    bucket  TEXT NOT NULL REFERENCES s3_buckets(name),
    key     BLOB NOT NULL,                    -- the key's UTF-8 bytes
    blob    TEXT NOT NULL UNIQUE,             -- the file with the bytes
    record  TEXT NOT NULL,                    -- JSON ObjectRecord
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

CREATE TABLE s3_uploads (
    upload_id    TEXT PRIMARY KEY,
    bucket       TEXT NOT NULL REFERENCES s3_buckets(name),
    key          BLOB NOT NULL,
    initiated_ms INTEGER NOT NULL,
    record       TEXT NOT NULL                -- JSON UploadRecord
);
CREATE INDEX s3_uploads_by_key ON s3_uploads (bucket, key, upload_id);

CREATE TABLE s3_parts (
    upload_id   TEXT NOT NULL REFERENCES s3_uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    blob        TEXT NOT NULL UNIQUE,
    record      TEXT NOT NULL,                -- JSON PartRecord
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
