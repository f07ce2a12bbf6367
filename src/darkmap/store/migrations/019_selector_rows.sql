-- Every record's registration of a selector is kept (found by an audit): the key on
-- (selector, kind, compartment) stored a selector once per compartment, under the first
-- record that named it, and dropped every later record's registration. After `ops
-- withdraw` of that first record the selector still matched under a record that no
-- longer stands, and a second record of the compartment that named it had left no row.
-- Now one row per selector, compartment, agency and record; a direct submission
-- (`deconflict submit`, no record) once per selector, compartment and agency, through
-- coalesce(record_id, ''). Matching leaves out the rows of withdrawn records.
--
-- Each row also says the form it was registered in (found by the same audit: a notice
-- did not say whether a handle matched market-qualified or bare): 'exact', as written,
-- or 'bare', the bare handle of a `market:handle`, which matches the same name on any
-- market (the weaker match). Rows stored before do not say; a handle among them is taken
-- as bare, so a notice never claims a stronger match than is known.
--
-- DuckDB cannot drop a key, so the table is rebuilt: same columns in the same order
-- and the form, same rows. (A later change of its columns drops the index first:
-- DuckDB alters no table that an index depends on.)
CREATE TABLE ops_selectors__rows (
    selector_hmac VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL,
    compartment_id VARCHAR NOT NULL,
    agency_id     VARCHAR NOT NULL,
    record_id     VARCHAR,
    submitted_by  VARCHAR NOT NULL,
    submitted_at  TIMESTAMP NOT NULL,
    form          VARCHAR NOT NULL
        CHECK (form IN ('exact', 'bare') AND (form = 'exact' OR kind = 'handle'))
);
INSERT INTO ops_selectors__rows
SELECT *, CASE WHEN kind = 'handle' THEN 'bare' ELSE 'exact' END FROM ops_selectors;
DROP TABLE ops_selectors;
ALTER TABLE ops_selectors__rows RENAME TO ops_selectors;
CREATE UNIQUE INDEX ops_selectors_once ON ops_selectors
    (selector_hmac, kind, compartment_id, agency_id, coalesce(record_id, ''));
