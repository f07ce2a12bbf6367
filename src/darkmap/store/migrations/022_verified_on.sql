-- A market's own statement of where else it verified a vendor (Cryptonia's
-- "Verifications: Dream: 34000 deals, 4.82/5 / Hansa: 3549/2/2"): account_observations
-- gains
--   verified_on   the lines as shown, one per market; NULL when none is shown.
-- darkmap.resolve.claims reads each as a claim of the vendor's own handle on the market
-- named (docs/linking.md, "Claims").

ALTER TABLE account_observations ADD COLUMN verified_on VARCHAR[];
