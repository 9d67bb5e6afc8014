-- Messaging vertical (Corbi): outbound messaging at scale over the core channels. The
-- recipient of every send is a contact; channel handles (WhatsApp number, Telegram chat id,
-- Instagram scoped id) live in core contact_identities, never here.

CREATE TABLE message_templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    channel channel_kind NOT NULL,
    language text NOT NULL DEFAULT 'en',
    subject text,
    body text NOT NULL,
    variables text[] NOT NULL DEFAULT '{}',
    approved_at timestamptz,
    approved_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_templates_name_channel_language_key UNIQUE (name, channel, language)
);

CREATE INDEX message_templates_approved_by_contact_id_idx ON message_templates (approved_by_contact_id);

COMMENT ON TABLE message_templates IS 'Reusable message bodies per channel and language; only approved templates are sent.';

ALTER TABLE message_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_templates FORCE ROW LEVEL SECURITY;

CREATE POLICY message_templates_tenant_app ON message_templates FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE message_templates TO orbis_app;

CREATE TYPE suppression_reason AS ENUM ('unsubscribed', 'bounced', 'blocked', 'complaint', 'manual');

COMMENT ON TYPE suppression_reason IS 'Why an address may no longer be messaged.';

-- Suppressions are keyed by the address, not the contact: an address stays suppressed even
-- if it is later attached to a different contact.
CREATE TABLE suppressions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    channel channel_kind NOT NULL,
    identifier text NOT NULL,
    reason suppression_reason NOT NULL,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT suppressions_channel_identifier_key UNIQUE (channel, identifier),
    CONSTRAINT suppressions_phone_e164 CHECK (
        channel NOT IN ('whatsapp', 'sms') OR identifier ~ '^\+[1-9][0-9]{6,14}$'
    )
);

CREATE INDEX suppressions_contact_id_idx ON suppressions (contact_id);

COMMENT ON TABLE suppressions IS 'Addresses that must not be messaged on a channel (unsubscribed, bounced, blocked). Checked before every send.';

ALTER TABLE suppressions ENABLE ROW LEVEL SECURITY;
ALTER TABLE suppressions FORCE ROW LEVEL SECURITY;

CREATE POLICY suppressions_tenant_app ON suppressions FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE suppressions TO orbis_app;
