-- A suspended user (docs/operations.md, Users and roles): an admin of the user's agency
-- suspends them from the workbench's Access page or `darkmap serve-user --suspend`; the
-- library then refuses every step they would take (reads included), and on the team
-- server row-level security refuses their own database login role too (operational
-- schema 11). Giving them a new sign-in (`darkmap serve-user`) reinstates them.
--   user_id        the suspended user (an ops_users.user_id)
--   suspended_by   the admin who suspended them
--   suspended_at   when (UTC)

CREATE TABLE ops_suspended (
    user_id       VARCHAR PRIMARY KEY,
    suspended_by  VARCHAR NOT NULL,
    suspended_at  TIMESTAMP NOT NULL
);
