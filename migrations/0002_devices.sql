-- 0002_devices: enrolment tokens, device credentials, desired releases, director documents and
-- status reports (the device API, issue 7).
--
-- Never edit this file once released: add a new numbered migration instead.

-- A fleet's enrolment tokens. As with API tokens only the SHA-256 (lower-case hex) is stored.
CREATE TABLE enrollment_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fleet_id    bigint NOT NULL REFERENCES fleets (id) ON DELETE RESTRICT,
    name        text NOT NULL DEFAULT '',
    token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    max_uses    integer CHECK (max_uses >= 1),  -- NULL: any number of devices
    uses        integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    created_by  text NOT NULL DEFAULT '',
    CHECK (max_uses IS NULL OR uses <= max_uses)
);
CREATE INDEX enrollment_tokens_fleet_idx ON enrollment_tokens (fleet_id, id);

ALTER TABLE devices
    -- SHA-256 (hex) of the device credential handed out at enrolment; never the credential.
    ADD COLUMN credential_hash text UNIQUE CHECK (credential_hash ~ '^[0-9a-f]{64}$'),
    ADD COLUMN enrollment_token_id bigint REFERENCES enrollment_tokens (id) ON DELETE RESTRICT,
    -- What an operator (or a rollout) wants the device to run.
    ADD COLUMN desired_release_id bigint REFERENCES releases (id) ON DELETE RESTRICT,
    ADD COLUMN desired_set_at timestamptz,
    ADD COLUMN desired_set_by text NOT NULL DEFAULT '',
    -- The last director document issued (signed JSON), what it named and until when it is valid:
    -- re-issued with the next version when the desired release changes or half its life passed.
    ADD COLUMN director_document text,
    ADD COLUMN director_release_id bigint REFERENCES releases (id) ON DELETE RESTRICT,
    ADD COLUMN director_expires_at timestamptz,
    ADD COLUMN last_error text NOT NULL DEFAULT '',
    ADD COLUMN revoked_at timestamptz;

ALTER TABLE devices
    ADD CONSTRAINT devices_update_state_check CHECK (update_state IN
        ('idle', 'downloading', 'verifying', 'staged', 'activating', 'healthy', 'failed',
         'rolled_back'));
