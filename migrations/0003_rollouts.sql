-- 0003_rollouts: fleet attributes for licence checks, rollouts in waves driven by device
-- reports, per-device rollout membership, rollout events and licence acceptances (issue 8).
--
-- Never edit this file once released: add a new numbered migration instead.

-- Where and how a fleet's devices are used, checked against licence terms at rollout creation.
ALTER TABLE fleets
    ADD COLUMN region text NOT NULL DEFAULT '' CHECK (region ~ '^([A-Z]{2})?$'),
    ADD COLUMN commercial_use boolean NOT NULL DEFAULT false;

ALTER TABLE rollouts
    -- Only during this daily UTC window (minutes after midnight; start > end wraps midnight) do
    -- new waves start. NULL: any time.
    ADD COLUMN window_start_minute integer CHECK (window_start_minute BETWEEN 0 AND 1439),
    ADD COLUMN window_end_minute integer CHECK (window_end_minute BETWEEN 0 AND 1439),
    ADD COLUMN reason text NOT NULL DEFAULT '',  -- why it was paused, aborted or rolled back
    ADD CONSTRAINT rollouts_window_check
        CHECK ((window_start_minute IS NULL) = (window_end_minute IS NULL));

ALTER TABLE rollout_waves
    ADD COLUMN soak_until timestamptz;  -- set when the wave reached its success threshold

-- The devices a rollout selected, each in one wave (or none: incompatible), with what it was
-- assigned before (for rollback) and how it fared.
CREATE TABLE rollout_devices (
    rollout_id          bigint NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    device_id           bigint NOT NULL REFERENCES devices (id) ON DELETE RESTRICT,
    wave                integer,  -- NULL: incompatible, never assigned
    state               text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'assigned', 'succeeded', 'failed',
                                         'incompatible', 'rolled_back')),
    previous_release_id bigint REFERENCES releases (id) ON DELETE RESTRICT,
    reason              text NOT NULL DEFAULT '',
    -- True while the rollout is pending, running or paused: at most one active rollout per device.
    active              boolean NOT NULL DEFAULT true,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, device_id),
    CHECK ((wave IS NULL) = (state = 'incompatible'))
);
CREATE UNIQUE INDEX rollout_devices_one_active_idx ON rollout_devices (device_id) WHERE active;
CREATE INDEX rollout_devices_wave_idx ON rollout_devices (rollout_id, wave, state);

CREATE TABLE rollout_events (
    id         bigserial PRIMARY KEY,
    rollout_id bigint NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    actor      text NOT NULL DEFAULT '',
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX rollout_events_rollout_idx ON rollout_events (rollout_id, id);

-- A licence accepted on behalf of this registry's organisation (the tenant): which model, which
-- licence version (SHA-256 of its canonical terms, and the SPDX expression), who and when.
CREATE TABLE license_acceptances (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id     bigint NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
    license_sha256 text NOT NULL CHECK (license_sha256 ~ '^[0-9a-f]{64}$'),
    spdx         text NOT NULL DEFAULT '',
    accepted_by  text NOT NULL,
    accepted_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, license_sha256)
);
