-- The three canonical homes for state. No layer creates its own *_state, *_cache, *_flags,
-- *_dedup, *_queue, *_events or *_log table:
--   something happened          -> orbis_state.events (with kind)
--   a workflow is in flight     -> workflow_state
--   a flag, a cache, a dedup key -> orbis_kv

CREATE TABLE orbis_state.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Dotted, lowercase: 'message.received', 'deal.stage_changed', 'contact.merged'.
    kind text NOT NULL CONSTRAINT events_kind_format CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    -- Tenant-wide events are recorded in the workspace container.
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_container_id_occurred_at_idx ON orbis_state.events (container_id, occurred_at);
CREATE INDEX events_kind_occurred_at_idx ON orbis_state.events (kind, occurred_at);
CREATE INDEX events_contact_id_idx ON orbis_state.events (contact_id);

COMMENT ON TABLE orbis_state.events IS 'The one event history of the tenant: every audit entry, usage record and domain event, discriminated by kind. Append-only, scoped by container (tenant-wide events live in the workspace container).';

ALTER TABLE orbis_state.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE orbis_state.events FORCE ROW LEVEL SECURITY;

CREATE POLICY events_container ON orbis_state.events FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

-- Append-only: history is never rewritten by the application.
GRANT SELECT, INSERT ON TABLE orbis_state.events TO orbis_app;

CREATE TABLE workflow_state (
    -- The workflow ('onboarding', 'trip_booking', ...) and the thing it runs for (a contact
    -- id, a deal id, a conversation): one in-flight instance per pair.
    workflow text NOT NULL,
    subject_key text NOT NULL,
    state jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Optimistic concurrency: writers update WHERE version = the version they read.
    version bigint NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    PRIMARY KEY (workflow, subject_key)
);

CREATE INDEX workflow_state_expires_at_idx ON workflow_state (expires_at) WHERE expires_at IS NOT NULL;

COMMENT ON TABLE workflow_state IS 'In-flight state of workflows, one row per (workflow, subject). The only place a layer keeps state that is not an event.';

ALTER TABLE workflow_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_state FORCE ROW LEVEL SECURITY;

CREATE POLICY workflow_state_tenant_app ON workflow_state FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE workflow_state TO orbis_app;

CREATE TABLE orbis_kv (
    namespace text NOT NULL,
    key text NOT NULL,
    value jsonb NOT NULL DEFAULT 'null'::jsonb,
    expires_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, key)
);

CREATE INDEX orbis_kv_expires_at_idx ON orbis_kv (expires_at) WHERE expires_at IS NOT NULL;

COMMENT ON TABLE orbis_kv IS 'Flags, caches and dedup keys, by namespace. Rows past expires_at are dead and may be purged.';

ALTER TABLE orbis_kv ENABLE ROW LEVEL SECURITY;
ALTER TABLE orbis_kv FORCE ROW LEVEL SECURITY;

CREATE POLICY orbis_kv_tenant_app ON orbis_kv FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE orbis_kv TO orbis_app;
