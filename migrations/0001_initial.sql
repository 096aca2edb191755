-- 0001_initial: the catalog's first schema.
--
-- Never edit this file once released: a changed checksum makes apply_migrations refuse to start.
-- Change the schema with a new numbered file instead.
--
-- Deletion policy: nothing that a published release depends on is removed by a cascade.
-- Parents of published data use ON DELETE RESTRICT; CASCADE is used only for rows that are
-- part of their parent (a build's files, a rollout's waves), and a trigger refuses to delete or
-- change the builds of a release that is no longer a draft.

CREATE TABLE namespaces (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),
    description   text NOT NULL DEFAULT '',
    -- k of the namespace's publisher keys must sign its delegated targets metadata.
    key_threshold integer NOT NULL DEFAULT 1 CHECK (key_threshold >= 1),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL,
    -- SHA-256 of the token, lower-case hex. The token itself is never stored.
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    scopes       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    created_by   text NOT NULL DEFAULT ''
);

CREATE TABLE publisher_keys (
    namespace_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE RESTRICT,
    keyid        text NOT NULL CHECK (length(keyid) BETWEEN 1 AND 255),
    key_json     text NOT NULL,  -- the TUF key object, as JSON
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace_id, keyid)
);

CREATE TABLE models (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace_id bigint NOT NULL REFERENCES namespaces (id) ON DELETE RESTRICT,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    description  text NOT NULL DEFAULT '',
    license      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (namespace_id, name)
);

CREATE TABLE releases (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_id     bigint NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
    version      text NOT NULL CHECK (length(version) BETWEEN 1 AND 128),
    state        text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'published', 'yanked')),
    notes        text NOT NULL DEFAULT '',
    license      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    yanked_at    timestamptz,
    yank_reason  text NOT NULL DEFAULT '',
    UNIQUE (model_id, version),
    CHECK (state = 'draft' OR published_at IS NOT NULL),
    CHECK (state <> 'yanked' OR yanked_at IS NOT NULL)
);
CREATE INDEX releases_model_id_idx ON releases (model_id, id);
CREATE INDEX releases_published_idx ON releases (id) WHERE state = 'published';

CREATE TABLE blobs (
    digest     text PRIMARY KEY CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
    size       bigint NOT NULL CHECK (size >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE builds (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id   bigint NOT NULL REFERENCES releases (id) ON DELETE RESTRICT,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    arch         text NOT NULL CHECK (length(arch) >= 1),
    isa          text[] NOT NULL DEFAULT '{}',  -- features the device must have, sorted
    accelerator  text NOT NULL DEFAULT 'none',
    min_ram_mb   bigint NOT NULL DEFAULT 0 CHECK (min_ram_mb >= 0),
    format       text NOT NULL DEFAULT '',
    quantization text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (release_id, name)
);
CREATE INDEX builds_target_idx ON builds (arch, accelerator);

CREATE TABLE build_files (
    build_id bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
    name     text NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
    digest   text NOT NULL REFERENCES blobs (digest) ON DELETE RESTRICT,
    size     bigint NOT NULL CHECK (size >= 0),
    PRIMARY KEY (build_id, name)
);
CREATE INDEX build_files_digest_idx ON build_files (digest);

CREATE TABLE attestations (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id bigint NOT NULL REFERENCES releases (id) ON DELETE RESTRICT,
    build_id   bigint REFERENCES builds (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('provenance', 'model_signature')),
    body       text NOT NULL,  -- the exact bytes as uploaded (a DSSE envelope or bundle)
    keyid      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attestations_release_idx ON attestations (release_id, id);
CREATE INDEX attestations_build_idx ON attestations (build_id);

-- Builds (and through them their files and attestations) of a published or yanked release are
-- immutable, whoever runs the SQL.
CREATE FUNCTION pylon_builds_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT state FROM releases WHERE id = OLD.release_id) <> 'draft' THEN
        RAISE EXCEPTION 'builds of a published release cannot be changed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER builds_frozen BEFORE UPDATE OR DELETE ON builds
    FOR EACH ROW EXECUTE FUNCTION pylon_builds_frozen();

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    remote_addr text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);

-- Device fleets and rollouts: first cut, extended by later migrations.

CREATE TABLE fleets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 255),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fleet_id           bigint NOT NULL REFERENCES fleets (id) ON DELETE RESTRICT,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    public_key         text NOT NULL UNIQUE,  -- Ed25519 identity key made at enrolment
    labels             jsonb NOT NULL DEFAULT '{}',
    hardware           jsonb NOT NULL DEFAULT '{}',  -- the agent's hardware probe
    enrolled_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz,
    current_release_id bigint REFERENCES releases (id) ON DELETE RESTRICT,
    current_build_id   bigint REFERENCES builds (id) ON DELETE RESTRICT,
    update_state       text NOT NULL DEFAULT 'idle',
    director_version   bigint NOT NULL DEFAULT 0,  -- last director targets version issued
    UNIQUE (fleet_id, name)
);
CREATE INDEX devices_labels_idx ON devices USING gin (labels);

CREATE TABLE rollouts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id    bigint NOT NULL REFERENCES releases (id) ON DELETE RESTRICT,
    fleet_id      bigint NOT NULL REFERENCES fleets (id) ON DELETE RESTRICT,
    selector      jsonb NOT NULL DEFAULT '{}',  -- label selector within the fleet
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'paused', 'completed', 'aborted',
                                   'rolled_back')),
    auto_rollback boolean NOT NULL DEFAULT true,
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX rollouts_fleet_idx ON rollouts (fleet_id, id);
CREATE INDEX rollouts_active_idx ON rollouts (id) WHERE state IN ('pending', 'running', 'paused');

CREATE TABLE rollout_waves (
    rollout_id        bigint NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    position          integer NOT NULL CHECK (position >= 0),
    percent           integer CHECK (percent BETWEEN 1 AND 100),
    device_count      integer CHECK (device_count >= 1),
    success_threshold numeric NOT NULL DEFAULT 1 CHECK (success_threshold BETWEEN 0 AND 1),
    failure_threshold numeric NOT NULL DEFAULT 0 CHECK (failure_threshold BETWEEN 0 AND 1),
    soak_seconds      integer NOT NULL DEFAULT 0 CHECK (soak_seconds >= 0),
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'running', 'soaking', 'succeeded', 'failed')),
    started_at        timestamptz,
    finished_at       timestamptz,
    PRIMARY KEY (rollout_id, position),
    CHECK ((percent IS NULL) <> (device_count IS NULL))
);

CREATE TABLE device_events (
    id         bigserial PRIMARY KEY,
    device_id  bigint NOT NULL REFERENCES devices (id) ON DELETE RESTRICT,
    rollout_id bigint REFERENCES rollouts (id) ON DELETE RESTRICT,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX device_events_device_idx ON device_events (device_id, id);
CREATE INDEX device_events_rollout_idx ON device_events (rollout_id, id)
    WHERE rollout_id IS NOT NULL;
