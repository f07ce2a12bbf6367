-- Issue #18: limits and cuts are recorded, not silent.
--
-- `quarantine.limit_name` names the limit a quarantined unit broke (field_chars,
-- file_bytes, nesting_depth, seconds, yaml_aliases, ...), NULL for any other reason.
-- `field_cuts` keeps every free-text field cut at its cap: where (capture, locator,
-- field), how long it was and how much was kept, and the sha256 of the whole value, so
-- that the full text stays reachable in the immutable capture and checkable. Like the
-- other evidence tables it is append-only and keyless (migration 007); its id hashes
-- the capture, the locator and the field.

ALTER TABLE quarantine ADD COLUMN limit_name VARCHAR;

CREATE TABLE field_cuts (
    cut_id         VARCHAR NOT NULL,
    market_id      VARCHAR,
    locator        VARCHAR NOT NULL,
    field          VARCHAR NOT NULL,
    original_chars BIGINT NOT NULL,
    kept_chars     BIGINT NOT NULL,
    value_sha256   VARCHAR,
    capture_sha256 VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,
    method         VARCHAR NOT NULL,
    run_id         VARCHAR
);
