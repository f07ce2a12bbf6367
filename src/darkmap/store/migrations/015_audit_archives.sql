-- Retention of the operational audit trail (`darkmap audit archive`). Entries older than
-- the retention period move to an archive file (JSON lines with their hashes) and leave
-- the live trail; one row here per archive keeps the range, the hash chain across the cut
-- (hash_before: the hash the first archived entry follows; hash_last: the last one's) and
-- the file's sha256, so `darkmap audit verify` checks the live trail from the cut and
-- `darkmap audit verify --archive FILE...` checks the files against these rows.
CREATE TABLE ops_audit_archives (
    seq_from      BIGINT PRIMARY KEY,
    seq_to        BIGINT NOT NULL,
    hash_before   VARCHAR NOT NULL,
    hash_last     VARCHAR NOT NULL,
    entries       BIGINT NOT NULL,
    oldest_at     VARCHAR NOT NULL,         -- stamps of the first and last archived entry
    newest_at     VARCHAR NOT NULL,
    file_name     VARCHAR NOT NULL,
    file_sha256   VARCHAR NOT NULL,
    archived_at   VARCHAR NOT NULL,
    archived_by   VARCHAR NOT NULL
);
