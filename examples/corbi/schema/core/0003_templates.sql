-- Message templates, approved by a user before use.

CREATE TYPE channel AS ENUM ('whatsapp', 'telegram', 'instagram', 'email', 'sms');

CREATE TABLE message_templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    channel channel NOT NULL,
    language text NOT NULL DEFAULT 'en',
    subject text,
    body text NOT NULL,
    variables text[] NOT NULL DEFAULT '{}',
    approved boolean NOT NULL DEFAULT false,
    approved_by uuid REFERENCES users (id) ON DELETE SET NULL,
    approved_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name, channel, language)
);

COMMENT ON TABLE message_templates IS 'Reusable message templates per channel and language';

CREATE INDEX message_templates_approved_by_idx ON message_templates (approved_by);

ALTER TABLE message_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_templates FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY message_templates_read ON message_templates FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY message_templates_insert ON message_templates FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY message_templates_update ON message_templates FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY message_templates_delete ON message_templates FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE message_templates TO corbi_app;
