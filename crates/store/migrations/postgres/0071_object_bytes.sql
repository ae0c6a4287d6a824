-- The bytes of S3 objects and multipart parts when several nodes share the database: each
-- blob (named by the random id its metadata refers to) in 4 MiB chunks, with its size and
-- SHA-256, which a node checks when it copies the blob into its local cache. `sha256` is set
-- once every chunk is stored: a blob without it is being written (or was abandoned by a crash,
-- and is swept once old and unreferenced).
CREATE TABLE s3_blobs (
    id         TEXT PRIMARY KEY,
    size       BIGINT NOT NULL DEFAULT 0,
    chunks     INTEGER NOT NULL DEFAULT 0,
    sha256     TEXT,
    created_ms BIGINT NOT NULL
);

CREATE TABLE s3_blob_chunks (
    id   TEXT NOT NULL REFERENCES s3_blobs (id) ON DELETE CASCADE,
    seq  INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (id, seq)
);
