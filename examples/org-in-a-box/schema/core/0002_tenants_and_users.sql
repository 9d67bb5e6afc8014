-- Core tables: tenants, users, RBAC, SSO sessions, personas, providers.

CREATE TABLE IF NOT EXISTS tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    entra_tenant_id text UNIQUE,
    settings jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tenants IS 'Organisation units: one Azure AD tenant = one OIAB tenant';

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS tenants_own ON tenants;
CREATE POLICY tenants_own ON tenants FOR ALL TO oiab_app
    USING (id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, UPDATE ON TABLE tenants TO oiab_app;

-- NULL tenant_id = single-operator mode (seed 003): the one place the key may be NULL.
-- strata-ignore tenant-key-missing: NULL tenant_id means a single-operator install (seed 003)
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    handle text NOT NULL UNIQUE,
    tenant_id uuid REFERENCES tenants (id) ON DELETE CASCADE,
    email text,
    display_name text,
    entra_object_id text,
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE users IS 'One row per person; tenant_id NULL = single-operator';

CREATE INDEX IF NOT EXISTS users_tenant_id_idx ON users (tenant_id);
CREATE INDEX IF NOT EXISTS users_display_name_trgm_idx ON users USING gin (display_name extensions.gin_trgm_ops);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS users_tenant ON users;
CREATE POLICY users_tenant ON users FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE users TO oiab_app;

CREATE TABLE IF NOT EXISTS roles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    permissions jsonb NOT NULL DEFAULT '{}',
    is_system boolean NOT NULL DEFAULT false,
    UNIQUE (tenant_id, name)
);

COMMENT ON TABLE roles IS 'RBAC roles; owner/admin/member/viewer are seeded on tenant creation';

ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS roles_tenant ON roles;
CREATE POLICY roles_tenant ON roles FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE roles TO oiab_app;

CREATE TABLE IF NOT EXISTS user_roles (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, user_id, role_id)
);

COMMENT ON TABLE user_roles IS 'Role assignments of users within a tenant';

CREATE INDEX IF NOT EXISTS user_roles_user_id_idx ON user_roles (user_id);
CREATE INDEX IF NOT EXISTS user_roles_role_id_idx ON user_roles (role_id);

ALTER TABLE user_roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_roles FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS user_roles_tenant ON user_roles;
CREATE POLICY user_roles_tenant ON user_roles FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE user_roles TO oiab_app;

CREATE TABLE IF NOT EXISTS entra_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    encrypted_tokens bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE entra_sessions IS 'Active Azure AD SSO sessions with encrypted tokens';

CREATE INDEX IF NOT EXISTS entra_sessions_tenant_id_idx ON entra_sessions (tenant_id);
CREATE INDEX IF NOT EXISTS entra_sessions_user_id_idx ON entra_sessions (user_id);

ALTER TABLE entra_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE entra_sessions FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS entra_sessions_tenant ON entra_sessions;
CREATE POLICY entra_sessions_tenant ON entra_sessions FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE entra_sessions TO oiab_app;

CREATE TABLE IF NOT EXISTS personas (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    UNIQUE (user_id, name)
);

COMMENT ON TABLE personas IS 'Named personas (work, personal) that contextualise memories';

CREATE INDEX IF NOT EXISTS personas_tenant_id_idx ON personas (tenant_id);

ALTER TABLE personas ENABLE ROW LEVEL SECURITY;
ALTER TABLE personas FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS personas_tenant ON personas;
CREATE POLICY personas_tenant ON personas FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE personas TO oiab_app;

CREATE TABLE IF NOT EXISTS providers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider text NOT NULL,
    encrypted_credentials bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, provider)
);

COMMENT ON TABLE providers IS 'Encrypted LLM provider credentials, one row per provider per user';

CREATE INDEX IF NOT EXISTS providers_tenant_id_idx ON providers (tenant_id);

ALTER TABLE providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE providers FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS providers_tenant ON providers;
CREATE POLICY providers_tenant ON providers FOR ALL TO oiab_app
    USING (tenant_id = (select current_setting('app.tenant_id', true))::uuid)
    WITH CHECK (tenant_id = (select current_setting('app.tenant_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE providers TO oiab_app;
