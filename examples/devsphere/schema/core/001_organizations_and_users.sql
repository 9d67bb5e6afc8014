-- Tenancy: organizations (the tenant root) and their users (soft-deleted, never removed).

CREATE SCHEMA IF NOT EXISTS extensions;

-- Encrypted columns (WordPress credentials, webhook secrets) use pgcrypto.
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;

CREATE TYPE user_role AS ENUM ('owner', 'admin', 'manager', 'member', 'client');

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE organizations IS 'Tenant root';

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;

CREATE POLICY organizations_own ON organizations FOR SELECT TO devsphere_app
    USING (id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT ON TABLE organizations TO devsphere_app;

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL,
    full_name text,
    role user_role NOT NULL DEFAULT 'member',
    is_active boolean NOT NULL DEFAULT true,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, email)
);

COMMENT ON TABLE users IS 'Users belong to an organization; soft-deleted (is_active, deleted_at)';

-- The caller's role (app.user_id) in the caller's organization (app.org_id); NULL for a
-- deactivated or deleted user. SECURITY DEFINER so that policies can read users under its
-- own policy; the search_path is pinned.
CREATE FUNCTION current_user_role() RETURNS user_role
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT u.role FROM public.users u
        WHERE u.id = nullif(current_setting('app.user_id', true), '')::uuid
          AND u.org_id = nullif(current_setting('app.org_id', true), '')::uuid
          AND u.is_active
          AND u.deleted_at IS NULL
    $$;

GRANT EXECUTE ON FUNCTION current_user_role() TO devsphere_app;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;

CREATE POLICY users_read ON users FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY users_insert ON users FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY users_update ON users FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY users_delete ON users FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE users TO devsphere_app;
