-- Issue #19: the crawler's frontier and fetch state, so that a crawl killed at any point
-- resumes where it stopped. Owner: darkmap.store.crawl (the only writer of crawl_ tables).
--
-- A crawl job is one pass over one market (a re-crawl is a new job); its frontier holds
-- every canonical URL found, queued or finished; its fetch log one row per request made.

CREATE TABLE crawl_jobs (
    crawl_id      VARCHAR PRIMARY KEY,
    market_id     VARCHAR NOT NULL,
    start_url     VARCHAR NOT NULL,
    plan          VARCHAR NOT NULL,         -- link kinds followed, comma-separated
    status        VARCHAR NOT NULL,         -- running | paused | stopped | done
    reason        VARCHAR,                  -- why paused or stopped (for the analyst)
    started_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP
);

CREATE TABLE crawl_frontier (
    crawl_id      VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,         -- canonical URL (the market's own onion)
    kind          VARCHAR NOT NULL,         -- start | categories | listings | vendors | feedback
    depth         INTEGER NOT NULL,
    seq           BIGINT NOT NULL,          -- discovery order (breadth first)
    state         VARCHAR NOT NULL,         -- queued | done | gone | failed
    attempts      INTEGER NOT NULL,
    http_status   INTEGER,
    sha256        VARCHAR,                  -- the capture of the stored body
    fetched_at    TIMESTAMP,
    error         VARCHAR,
    PRIMARY KEY (crawl_id, url)
);

CREATE TABLE crawl_fetches (
    crawl_id      VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,         -- canonical URL
    target        VARCHAR NOT NULL,         -- URL requested (the mirror used)
    attempt       INTEGER NOT NULL,
    started_at    TIMESTAMP NOT NULL,       -- UTC
    seconds       DOUBLE NOT NULL,
    http_status   INTEGER,
    outcome       VARCHAR NOT NULL,         -- ok | timeout | http_5xx | http_429 | truncated ...
    bytes         BIGINT NOT NULL,
    sha256        VARCHAR,
    warc_file     VARCHAR,
    warc_offset   BIGINT
);
