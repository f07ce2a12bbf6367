-- Event deconfliction compares two events within the larger of their two radii (found
-- by an audit: only the later planner's counted, so an agency's declared 5 km safety
-- radius was ignored when it planned first). ops_events gains
--   within_m   the radius (metres) the event was planned with; NULL for events planned
--              before (compared with the default radius, 1,000 m).
-- The team server has kept it since schema 5 (darkmap.store.ops_guards).

ALTER TABLE ops_events ADD COLUMN within_m DOUBLE;
