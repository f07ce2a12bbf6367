-- Scores of the stages against ground truth (a simulated world's truth.json or labels),
-- kept so that reports can show how far the results can be trusted.
CREATE TABLE evaluations (
    key           VARCHAR PRIMARY KEY,      -- linking | chain | drugs
    result        JSON NOT NULL,
    truth_source  VARCHAR,
    created_at    TIMESTAMP NOT NULL
);
