-- The web workbench (issue #14): sign-in credentials of the operational users
-- (ops_users), failed sign-ins for the lockout, and API tokens. Only
-- darkmap.store.web writes these tables. Sessions live in the server process.

CREATE TABLE web_logins (
    user_id        VARCHAR PRIMARY KEY,     -- an ops_users.user_id
    web_role       VARCHAR NOT NULL CHECK (web_role IN ('analyst', 'supervisor', 'admin')),
    password_hash  VARCHAR NOT NULL,        -- argon2id, PHC string
    totp_secret    VARCHAR NOT NULL,        -- base32 (RFC 4648), RFC 6238 SHA-1, 30 s, 6 digits
    totp_last_step BIGINT,                  -- the newest time step accepted: no replay
    created_by     VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL
);

CREATE TABLE web_failures (
    user_id        VARCHAR NOT NULL,
    failed_at      TIMESTAMP NOT NULL,
    reason         VARCHAR NOT NULL
);

CREATE TABLE web_tokens (
    token_sha256   VARCHAR PRIMARY KEY,     -- the token itself is shown once, never stored
    user_id        VARCHAR NOT NULL,
    label          VARCHAR NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    revoked_at     TIMESTAMP
);
