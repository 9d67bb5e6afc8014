-- Tenancy and membership: organizations own all domain data; a membership links a
-- user to an organization with a role (admin / staff / viewer).

CREATE TYPE membership_role AS ENUM ('admin', 'staff', 'viewer');

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL UNIQUE,
    full_name text,
    is_active boolean NOT NULL DEFAULT true,
    date_joined timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE users IS 'Django auth users: global, one login for many organizations';

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    domain text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE organizations IS 'The tenant: owns all domain data';

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;

CREATE POLICY organizations_own ON organizations FOR SELECT TO corbi_app
    USING (id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT ON TABLE organizations TO corbi_app;

CREATE TABLE memberships (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role membership_role NOT NULL DEFAULT 'viewer',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, user_id)
);

COMMENT ON TABLE memberships IS 'A user in an organization, with a role';

CREATE INDEX memberships_user_id_idx ON memberships (user_id);

-- The role of the signed-in user (app.user_id) in the current organization (app.org_id).
-- SECURITY DEFINER so that policies can read memberships under its own policy.
CREATE FUNCTION current_org_role() RETURNS membership_role
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT m.role FROM public.memberships m
        WHERE m.user_id = nullif(current_setting('app.user_id', true), '')::uuid
          AND m.organization_id = nullif(current_setting('app.org_id', true), '')::uuid
    $$;

GRANT EXECUTE ON FUNCTION current_org_role() TO corbi_app;

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;

-- Members see the organization's memberships; only admins manage them.
CREATE POLICY memberships_read ON memberships FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY memberships_insert ON memberships FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) = 'admin');
CREATE POLICY memberships_update ON memberships FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) = 'admin')
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) = 'admin');
CREATE POLICY memberships_delete ON memberships FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) = 'admin');

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE memberships TO corbi_app;
