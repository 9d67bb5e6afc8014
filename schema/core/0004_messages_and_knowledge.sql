-- Conversation history and the knowledge distilled from it, both scoped to their
-- container, and the audit trail of every crossing between containers.

CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    -- NULL when the sender could not be resolved to a contact: the message keeps its
    -- sender_name instead and is neither deleted nor attributed to a made-up person.
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    sender_name text,
    direction message_direction NOT NULL,
    body text,
    -- The channel's id of the message, for idempotent ingestion.
    channel_message_ref text,
    reply_to_message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    sent_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_sender_known CHECK (contact_id IS NOT NULL OR sender_name IS NOT NULL),
    CONSTRAINT messages_channel_message_ref_key UNIQUE (container_id, channel_message_ref)
);

CREATE INDEX messages_container_id_sent_at_idx ON messages (container_id, sent_at);
CREATE INDEX messages_contact_id_idx ON messages (contact_id);
CREATE INDEX messages_reply_to_message_id_idx ON messages (reply_to_message_id);

COMMENT ON TABLE messages IS 'Every message in every container. contact_id is NULL only for senders that could not be resolved, who keep their sender_name.';
COMMENT ON COLUMN messages.sender_name IS 'Display name of a sender that is not (yet) resolved to a contact; required when contact_id is NULL.';

ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages FORCE ROW LEVEL SECURITY;

CREATE POLICY messages_container ON messages FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE messages TO orbis_app;

CREATE TABLE knowledge_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    kind knowledge_kind NOT NULL,
    title text,
    body text NOT NULL,
    source_message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    about_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX knowledge_items_container_id_kind_idx ON knowledge_items (container_id, kind);
CREATE INDEX knowledge_items_source_message_id_idx ON knowledge_items (source_message_id);
CREATE INDEX knowledge_items_about_contact_id_idx ON knowledge_items (about_contact_id);
CREATE INDEX knowledge_items_created_by_contact_id_idx ON knowledge_items (created_by_contact_id);

COMMENT ON TABLE knowledge_items IS 'Knowledge learned inside a container (facts, decisions, notes, links, files). It stays in its container; sharing copies it and writes container_share.';

ALTER TABLE knowledge_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_items FORCE ROW LEVEL SECURITY;

CREATE POLICY knowledge_items_container ON knowledge_items FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE knowledge_items TO orbis_app;

-- The only sanctioned way across a container boundary. A person must have asked for it
-- (shared_by_contact_id is required), and the row says what crossed and why. Append-only.
CREATE TABLE container_share (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_container_id uuid NOT NULL REFERENCES containers (id) ON DELETE RESTRICT,
    target_container_id uuid NOT NULL REFERENCES containers (id) ON DELETE RESTRICT,
    shared_by_contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    -- What crossed: a knowledge item (copied into target_knowledge_item_id) or a message.
    knowledge_item_id uuid REFERENCES knowledge_items (id) ON DELETE SET NULL,
    target_knowledge_item_id uuid REFERENCES knowledge_items (id) ON DELETE SET NULL,
    message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    summary text NOT NULL,
    reason text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT container_share_crosses_boundary CHECK (source_container_id <> target_container_id)
);

CREATE INDEX container_share_source_container_id_idx ON container_share (source_container_id, created_at);
CREATE INDEX container_share_target_container_id_idx ON container_share (target_container_id, created_at);
CREATE INDEX container_share_shared_by_contact_id_idx ON container_share (shared_by_contact_id);
CREATE INDEX container_share_knowledge_item_id_idx ON container_share (knowledge_item_id);
CREATE INDEX container_share_target_knowledge_item_id_idx ON container_share (target_knowledge_item_id);
CREATE INDEX container_share_message_id_idx ON container_share (message_id);

COMMENT ON TABLE container_share IS 'Audit trail of every piece of knowledge that crossed a container boundary: from where, to where, who shared it, what and why. Append-only.';

ALTER TABLE container_share ENABLE ROW LEVEL SECURITY;
ALTER TABLE container_share FORCE ROW LEVEL SECURITY;

-- Both sides of a crossing can see it; a crossing can only be recorded from one of its sides.
CREATE POLICY container_share_read ON container_share FOR SELECT TO orbis_app
    USING (
        source_container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid)
        OR target_container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid)
    );

CREATE POLICY container_share_record ON container_share FOR INSERT TO orbis_app
    WITH CHECK (
        source_container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid)
        OR target_container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid)
    );

GRANT SELECT, INSERT ON TABLE container_share TO orbis_app;
