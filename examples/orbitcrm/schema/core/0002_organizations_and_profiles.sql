-- Phase 1: the tenant root and the users of each organization.

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    settings jsonb NOT NULL DEFAULT '{}',
    subscription_tier text NOT NULL DEFAULT 'free' CHECK (subscription_tier IN ('free', 'pro', 'business')),
    stripe_customer_id text,
    stripe_subscription_id text,
    token_balance integer NOT NULL DEFAULT 0,
    token_pack_balance integer NOT NULL DEFAULT 0,
    enabled_packs text[] NOT NULL DEFAULT '{}',
    current_period_start timestamptz,
    current_period_end timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE organizations IS 'Multi-tenancy root with subscription data';

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;

CREATE POLICY organizations_own ON organizations FOR ALL TO orbitcrm_app
    USING (id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, UPDATE ON TABLE organizations TO orbitcrm_app;

-- The seed links profiles.id to auth.users(id) (Supabase Auth); the auth schema
-- is Supabase's, so here the id is the auth user's id without a foreign key.
CREATE TABLE profiles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role user_role NOT NULL DEFAULT 'member',
    full_name text,
    email text,
    avatar_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE profiles IS 'User profiles linked to Supabase Auth; role owner or member';

CREATE INDEX profiles_org_id_idx ON profiles (org_id);

ALTER TABLE profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE profiles FORCE ROW LEVEL SECURITY;

CREATE POLICY profiles_tenant ON profiles FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE profiles TO orbitcrm_app;

-- Whether the signed-in user (app.user_id) is an owner of the current organization.
-- SECURITY DEFINER so that it can read profiles under their own policy.
CREATE FUNCTION is_org_owner() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM public.profiles p
            WHERE p.id = nullif(current_setting('app.user_id', true), '')::uuid
              AND p.org_id = nullif(current_setting('app.org_id', true), '')::uuid
              AND p.role = 'owner'
        )
    $$;

GRANT EXECUTE ON FUNCTION is_org_owner() TO orbitcrm_app;
