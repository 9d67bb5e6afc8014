-- Messaging vertical: sends and receipts. Deleting a contact deletes their outbound messages
-- but keeps inbound ones (contact_id becomes NULL), as in Corbi.

CREATE TYPE outbound_status AS ENUM ('pending', 'sent', 'retrying', 'failed', 'delivered', 'read');

COMMENT ON TYPE outbound_status IS 'Delivery state of an outbound message.';

CREATE TABLE outbound_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    template_id uuid REFERENCES message_templates (id) ON DELETE SET NULL,
    channel channel_kind NOT NULL,
    body text NOT NULL,
    variables jsonb NOT NULL DEFAULT '{}'::jsonb,
    media_url text,
    scheduled_for timestamptz NOT NULL DEFAULT now(),
    status outbound_status NOT NULL DEFAULT 'pending',
    retry_count integer NOT NULL DEFAULT 0 CONSTRAINT outbound_messages_retry_count_positive CHECK (retry_count >= 0),
    error text,
    trace_id text,
    provider_message_id text,
    provider_status text,
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    created_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbound_messages_contact_id_idx ON outbound_messages (contact_id);
CREATE INDEX outbound_messages_template_id_idx ON outbound_messages (template_id);
CREATE INDEX outbound_messages_created_by_contact_id_idx ON outbound_messages (created_by_contact_id);
-- The sender picks due messages by status and schedule.
CREATE INDEX outbound_messages_status_scheduled_for_idx ON outbound_messages (status, scheduled_for);
CREATE UNIQUE INDEX outbound_messages_provider_message_id_idx ON outbound_messages (channel, provider_message_id) WHERE provider_message_id IS NOT NULL;

COMMENT ON TABLE outbound_messages IS 'Messages scheduled for or sent to a contact, with provider delivery status and retries.';

ALTER TABLE outbound_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbound_messages FORCE ROW LEVEL SECURITY;

CREATE POLICY outbound_messages_tenant_app ON outbound_messages FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE outbound_messages TO orbis_app;

CREATE TABLE inbound_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL until the sender is resolved to a contact, or after the contact is deleted.
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    channel channel_kind NOT NULL,
    -- The routable address the message came from (E.164 for WhatsApp and SMS).
    from_identifier text NOT NULL,
    payload jsonb NOT NULL DEFAULT '{}'::jsonb,
    media_url text,
    provider_message_id text,
    -- The outbound message this one answers, when the provider says so.
    in_reply_to_outbound_id uuid REFERENCES outbound_messages (id) ON DELETE SET NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbound_messages_from_phone_e164 CHECK (
        channel NOT IN ('whatsapp', 'sms') OR from_identifier ~ '^\+[1-9][0-9]{6,14}$'
    )
);

CREATE INDEX inbound_messages_contact_id_idx ON inbound_messages (contact_id);
CREATE INDEX inbound_messages_in_reply_to_outbound_id_idx ON inbound_messages (in_reply_to_outbound_id);
CREATE INDEX inbound_messages_received_at_idx ON inbound_messages (received_at);
CREATE UNIQUE INDEX inbound_messages_provider_message_id_idx ON inbound_messages (channel, provider_message_id) WHERE provider_message_id IS NOT NULL;

COMMENT ON TABLE inbound_messages IS 'Messages received from contacts (or from addresses not yet resolved to one); kept when the contact is deleted.';

ALTER TABLE inbound_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbound_messages FORCE ROW LEVEL SECURITY;

CREATE POLICY inbound_messages_tenant_app ON inbound_messages FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE inbound_messages TO orbis_app;
