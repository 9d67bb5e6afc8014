-- Runtime: the job queue, the orchestrator, skills, analytics, audit, sessions, templates.

CREATE TABLE IF NOT EXISTS jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    payload jsonb NOT NULL DEFAULT '{}',
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    dedupe_key text,
    locked_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE jobs IS 'The central job queue (workers claim with FOR UPDATE SKIP LOCKED)';

CREATE INDEX IF NOT EXISTS jobs_tenant_id_idx ON jobs (tenant_id);
CREATE INDEX IF NOT EXISTS jobs_pending_run_at_idx ON jobs (run_at) WHERE status = 'pending';
-- Prevents duplicate jobs: one live job per dedupe key.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_dedupe_key_idx ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL;

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS jobs_tenant ON jobs;
CREATE POLICY jobs_tenant ON jobs FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE jobs TO oiab_app;

CREATE TABLE IF NOT EXISTS orchestrator_plans (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'planning',
    plan jsonb NOT NULL DEFAULT '[]',
    result text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE orchestrator_plans IS 'One row per complex task decomposition';

CREATE INDEX IF NOT EXISTS orchestrator_plans_tenant_id_idx ON orchestrator_plans (tenant_id);

ALTER TABLE orchestrator_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator_plans FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS orchestrator_plans_tenant ON orchestrator_plans;
CREATE POLICY orchestrator_plans_tenant ON orchestrator_plans FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE orchestrator_plans TO oiab_app;

CREATE TABLE IF NOT EXISTS orchestrator_subtasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id uuid NOT NULL REFERENCES orchestrator_plans (id) ON DELETE CASCADE,
    index integer NOT NULL,
    dependencies integer[] NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending',
    result text,
    UNIQUE (plan_id, index)
);

COMMENT ON TABLE orchestrator_subtasks IS 'One row per sub-task of a plan';

CREATE INDEX IF NOT EXISTS orchestrator_subtasks_tenant_id_idx ON orchestrator_subtasks (tenant_id);

ALTER TABLE orchestrator_subtasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE orchestrator_subtasks FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS orchestrator_subtasks_tenant ON orchestrator_subtasks;
CREATE POLICY orchestrator_subtasks_tenant ON orchestrator_subtasks FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE orchestrator_subtasks TO oiab_app;

CREATE TABLE IF NOT EXISTS skills (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    status text NOT NULL DEFAULT 'proposed',
    version integer NOT NULL DEFAULT 1,
    body text NOT NULL,
    source_trajectories uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, version)
);

COMMENT ON TABLE skills IS 'Versioned reusable skills (proposed, promoted, deprecated)';

ALTER TABLE skills ENABLE ROW LEVEL SECURITY;
ALTER TABLE skills FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS skills_tenant ON skills;
CREATE POLICY skills_tenant ON skills FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE skills TO oiab_app;

CREATE TABLE IF NOT EXISTS usage_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    request_id text NOT NULL,
    model text NOT NULL,
    tokens_in integer NOT NULL DEFAULT 0,
    tokens_out integer NOT NULL DEFAULT 0,
    cost_usd numeric(12, 6) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Idempotent on request_id: a retried request is never counted twice.
    CONSTRAINT usage_events_request_id_key UNIQUE (request_id)
);

COMMENT ON TABLE usage_events IS 'Per-request token and cost data, idempotent on request_id';

CREATE INDEX IF NOT EXISTS usage_events_tenant_id_idx ON usage_events (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS usage_events_user_id_idx ON usage_events (user_id);

ALTER TABLE usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_events FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS usage_events_tenant ON usage_events;
CREATE POLICY usage_events_tenant ON usage_events FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE usage_events TO oiab_app;

CREATE TABLE IF NOT EXISTS audit_log (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    action text NOT NULL,
    target text,
    details jsonb NOT NULL DEFAULT '{}',
    ts timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE audit_log IS 'Append-only compliance log';

CREATE INDEX IF NOT EXISTS audit_log_tenant_id_ts_idx ON audit_log (tenant_id, ts);
CREATE INDEX IF NOT EXISTS audit_log_actor_user_id_idx ON audit_log (actor_user_id);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;

-- Append-only: the application reads and inserts, never updates or deletes.
DROP POLICY IF EXISTS audit_log_read ON audit_log;
CREATE POLICY audit_log_read ON audit_log FOR SELECT TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid);
DROP POLICY IF EXISTS audit_log_append ON audit_log;
CREATE POLICY audit_log_append ON audit_log FOR INSERT TO oiab_app
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT ON TABLE audit_log TO oiab_app;

CREATE TABLE IF NOT EXISTS sessions_index (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_key text NOT NULL UNIQUE,
    template_slug text,
    template_system_prompt text,
    template_model_override text,
    template_snapshot_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE sessions_index IS 'Session metadata plus the frozen template behaviour of the session';

CREATE INDEX IF NOT EXISTS sessions_index_tenant_id_idx ON sessions_index (tenant_id);
CREATE INDEX IF NOT EXISTS sessions_index_user_id_idx ON sessions_index (user_id);

ALTER TABLE sessions_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions_index FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS sessions_index_tenant ON sessions_index;
CREATE POLICY sessions_index_tenant ON sessions_index FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE sessions_index TO oiab_app;

-- NULL tenant_id = a global template (seed 003).
-- strata-ignore tenant-key-missing: NULL tenant_id marks a global template (seed 003)
CREATE TABLE IF NOT EXISTS agent_templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    slug text NOT NULL,
    system_prompt text NOT NULL,
    model_override text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug)
);

COMMENT ON TABLE agent_templates IS 'Pre-built agent configurations; NULL tenant_id = global';

ALTER TABLE agent_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE agent_templates FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS agent_templates_tenant ON agent_templates;
CREATE POLICY agent_templates_tenant ON agent_templates FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE agent_templates TO oiab_app;
