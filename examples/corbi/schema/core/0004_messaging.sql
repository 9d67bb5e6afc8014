-- Messaging: outbound messages cascade with their contact; inbound messages keep their
-- payload when the contact is deleted (SET NULL); suppressions are unique per
-- (organization, channel, identifier).

CREATE TYPE outbound_status AS ENUM ('pending', 'sent', 'retrying', 'failed', 'delivered', 'read');

CREATE TABLE outbound_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    template_id uuid REFERENCES message_templates (id) ON DELETE SET NULL,
    channel channel NOT NULL,
    body text NOT NULL,
    variables jsonb NOT NULL DEFAULT '{}',
    media_url text,
    scheduled_for timestamptz,
    status outbound_status NOT NULL DEFAULT 'pending',
    retry_count integer NOT NULL DEFAULT 0,
    error text,
    trace_id text,
    provider_message_id text,
    provider_status text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE outbound_messages IS 'Scheduled and sent messages (throttled, suppression-checked)';

CREATE INDEX outbound_messages_organization_id_idx ON outbound_messages (organization_id);
CREATE INDEX outbound_messages_contact_id_idx ON outbound_messages (contact_id);
CREATE INDEX outbound_messages_template_id_idx ON outbound_messages (template_id);

ALTER TABLE outbound_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbound_messages FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY outbound_messages_read ON outbound_messages FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY outbound_messages_insert ON outbound_messages FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY outbound_messages_update ON outbound_messages FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY outbound_messages_delete ON outbound_messages FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE outbound_messages TO corbi_app;

CREATE TABLE inbound_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    channel channel NOT NULL,
    payload jsonb NOT NULL,
    media_url text,
    received_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE inbound_messages IS 'Received messages; the contact is optional';

CREATE INDEX inbound_messages_organization_id_idx ON inbound_messages (organization_id);
CREATE INDEX inbound_messages_contact_id_idx ON inbound_messages (contact_id);

ALTER TABLE inbound_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbound_messages FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY inbound_messages_read ON inbound_messages FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY inbound_messages_insert ON inbound_messages FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY inbound_messages_update ON inbound_messages FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY inbound_messages_delete ON inbound_messages FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE inbound_messages TO corbi_app;

CREATE TABLE suppressions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    channel channel NOT NULL,
    identifier text NOT NULL,
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suppressions_org_channel_identifier_key UNIQUE (organization_id, channel, identifier)
);

COMMENT ON TABLE suppressions IS 'Identifiers that must never be messaged on a channel';

ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE suppressions FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY suppressions_read ON suppressions FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY suppressions_insert ON suppressions FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY suppressions_update ON suppressions FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY suppressions_delete ON suppressions FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE suppressions TO corbi_app;
