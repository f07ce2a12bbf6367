-- What each link run changed since the previous one (`darkmap link` prints it,
-- `darkmap persona show` says it for one persona). Personas are compared by membership
-- (their ids follow their smallest account: docs/linking.md, "What a run changed"); each
-- change (a split, a merge, accounts moved, a persona grown by new accounts) is stored
-- once per persona id on each side of it, with the whole change as JSON.
CREATE TABLE persona_changes (
    run_id        VARCHAR NOT NULL,         -- the link run that made the change
    persona_id    VARCHAR NOT NULL,         -- a persona before or after the change
    side          VARCHAR NOT NULL CHECK (side IN ('before', 'after')),
    kind          VARCHAR NOT NULL,         -- split, merge, move, grew
    change        JSON NOT NULL,            -- {kind, before, after, moves, judgements}
    PRIMARY KEY (run_id, persona_id, side)
);
