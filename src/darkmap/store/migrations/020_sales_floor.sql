-- A sales counter shown as a bracket ("Orders 30+" on a Hansa profile, "Level 9 (800+)"
-- beside a vendor's name on Hansa listing and category pages) is a lower bound, not a
-- count: account_observations gains
--   sales_floor   the bracket's number (800 for "800+"): the account had at least this
--                 many sales when observed. NULL when no bracket is shown. An exact
--                 counter stays in sales_count.
-- darkmap.assess.sales reads it as the least number of orders (docs/sales.md section 1).

ALTER TABLE account_observations ADD COLUMN sales_floor INTEGER;
