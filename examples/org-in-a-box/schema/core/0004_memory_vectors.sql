-- Memory and the learning loop: pgvector embeddings. Kept in its own migration so that a
-- server without pgvector stops here with a clear preflight error.

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;

CREATE TABLE IF NOT EXISTS memories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    persona_id uuid REFERENCES personas (id) ON DELETE SET NULL,
    kind text NOT NULL,
    content text NOT NULL,
    visibility text NOT NULL DEFAULT 'private',
    embedding extensions.vector(1536),
    source_session_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE memories IS 'Long-term agent memories with pgvector embeddings';

CREATE INDEX IF NOT EXISTS memories_tenant_id_idx ON memories (tenant_id);
CREATE INDEX IF NOT EXISTS memories_user_id_idx ON memories (user_id);
CREATE INDEX IF NOT EXISTS memories_persona_id_idx ON memories (persona_id);

ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS memories_tenant ON memories;
CREATE POLICY memories_tenant ON memories FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE memories TO oiab_app;

CREATE TABLE IF NOT EXISTS trajectories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id text NOT NULL,
    tools jsonb NOT NULL DEFAULT '[]',
    embedding extensions.vector(1536),
    outcome text NOT NULL,
    reflection text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE trajectories IS 'Tool usage trajectory per session, with embedding';

CREATE INDEX IF NOT EXISTS trajectories_tenant_id_idx ON trajectories (tenant_id);

ALTER TABLE trajectories ENABLE ROW LEVEL SECURITY;
ALTER TABLE trajectories FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS trajectories_tenant ON trajectories;
CREATE POLICY trajectories_tenant ON trajectories FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE trajectories TO oiab_app;
