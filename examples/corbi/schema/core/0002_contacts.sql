-- Contacts and identity: a contact belongs to an organization; identity conflicts
-- capture attempted conflicting updates of a contact's identifiers.

CREATE TYPE contact_status AS ENUM ('active', 'blocked', 'unsubscribed', 'bounced');

CREATE TABLE contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    full_name text,
    email text,
    phone_whatsapp text,
    telegram_chat_id text,
    instagram_scoped_id text,
    status contact_status NOT NULL DEFAULT 'active',
    tags text[] NOT NULL DEFAULT '{}',
    notes text,
    last_inbound_at timestamptz,
    last_outbound_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE contacts IS 'The people an organization messages';

CREATE INDEX contacts_organization_id_idx ON contacts (organization_id);

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY contacts_read ON contacts FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY contacts_insert ON contacts FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY contacts_update ON contacts FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY contacts_delete ON contacts FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE contacts TO corbi_app;

CREATE TABLE identity_conflicts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    field text NOT NULL,
    existing_value text,
    attempted_value text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE identity_conflicts IS 'Attempted conflicting identifier updates (not surfaced in UI yet)';

CREATE INDEX identity_conflicts_organization_id_idx ON identity_conflicts (organization_id);
CREATE INDEX identity_conflicts_contact_id_idx ON identity_conflicts (contact_id);

ALTER TABLE identity_conflicts ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_conflicts FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY identity_conflicts_read ON identity_conflicts FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY identity_conflicts_insert ON identity_conflicts FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY identity_conflicts_update ON identity_conflicts FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY identity_conflicts_delete ON identity_conflicts FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE identity_conflicts TO corbi_app;
