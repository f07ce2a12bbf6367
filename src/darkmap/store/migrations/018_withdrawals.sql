-- Corrections: a withdrawn operational record (a mistyped seizure, the wrong operation,
-- a duplicate). The record itself is never changed or deleted; one row here withdraws
-- it (by whom, when in UTC, why, and the record that corrects it, if any), appended
-- with its `record.withdraw` audit entry. A withdrawn record is left out of the
-- recorded totals, the per-country packages, the fentanyl marks and the exports by
-- case; `ops show` still shows it, marked. A withdrawal is never withdrawn.
CREATE TABLE ops_withdrawals (
    record_id     VARCHAR PRIMARY KEY,
    withdrawn_by  VARCHAR NOT NULL,
    withdrawn_at  TIMESTAMP NOT NULL,
    why           VARCHAR NOT NULL,
    replaced_by   VARCHAR
);
