-- Overlaps within one agency are flagged (docs/operations.md, Deconfliction): two of its
-- compartments holding one selector, or planning clashing events, are told when the user
-- who stored it may not read the other compartment. Such a notice is addressed to one
-- compartment, not the whole agency. ops_notices gains
--   to_compartment   the compartment whose readers read and acknowledge the notice;
--                    NULL for a notice to the whole agency (every notice between
--                    agencies, and every notice made before).
-- The team server has kept it since operational schema 10 (darkmap.store.operations).

ALTER TABLE ops_notices ADD COLUMN to_compartment VARCHAR;
