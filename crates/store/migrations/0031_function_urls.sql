-- Function URL configurations: one per function and qualifier ('$LATEST' or an alias), found
-- by url-id when a request arrives. Deleting the function (or the alias) deletes its URL.

CREATE TABLE function_urls (
    url_id        TEXT PRIMARY KEY,
    function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT NOT NULL,
    revision_id   TEXT NOT NULL,
    record        TEXT NOT NULL,
    UNIQUE (function_name, qualifier)
);
