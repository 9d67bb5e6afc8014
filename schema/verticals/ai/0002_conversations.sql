-- AI vertical: personas and conversations with the assistant. A conversation happens in a
-- container (a direct chat, a group, or the workspace for dashboard chats) and stays there.
-- Token usage is recorded per message; billing roll-ups go to orbis_state.events, never to a
-- usage log table of their own.

CREATE TABLE personas (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    description text,
    system_prompt text NOT NULL,
    model text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE personas IS 'Named assistant personas ("work", "concierge") that set the system prompt and contextualise memories. A persona is a role the assistant plays, not a person.';

ALTER TABLE personas ENABLE ROW LEVEL SECURITY;
ALTER TABLE personas FORCE ROW LEVEL SECURITY;

CREATE POLICY personas_tenant_app ON personas FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE personas TO orbis_app;

CREATE TABLE ai_conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    started_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    -- The contact the conversation is about, when it has one as context.
    subject_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    persona_id uuid REFERENCES personas (id) ON DELETE SET NULL,
    title text,
    model text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_conversations_id_container_id_key UNIQUE (id, container_id)
);

CREATE INDEX ai_conversations_container_id_updated_at_idx ON ai_conversations (container_id, updated_at);
CREATE INDEX ai_conversations_started_by_contact_id_idx ON ai_conversations (started_by_contact_id);
CREATE INDEX ai_conversations_subject_contact_id_idx ON ai_conversations (subject_contact_id);
CREATE INDEX ai_conversations_persona_id_idx ON ai_conversations (persona_id);

COMMENT ON TABLE ai_conversations IS 'Conversations with the assistant, scoped to the container they happen in.';

ALTER TABLE ai_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_conversations FORCE ROW LEVEL SECURITY;

CREATE POLICY ai_conversations_container ON ai_conversations FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ai_conversations TO orbis_app;

CREATE TYPE ai_message_role AS ENUM ('system', 'user', 'assistant', 'tool');

COMMENT ON TYPE ai_message_role IS 'Author role of a message in an assistant conversation.';

CREATE TABLE ai_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL,
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    role ai_message_role NOT NULL,
    -- The human author of a 'user' message; NULL for assistant, system and tool messages.
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    content text NOT NULL,
    model text,
    tokens_in integer CONSTRAINT ai_messages_tokens_in_positive CHECK (tokens_in >= 0),
    tokens_out integer CONSTRAINT ai_messages_tokens_out_positive CHECK (tokens_out >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ai_messages_conversation_fkey FOREIGN KEY (conversation_id, container_id)
        REFERENCES ai_conversations (id, container_id) ON DELETE CASCADE
);

-- Also the index of the (conversation_id, container_id) foreign key.
CREATE INDEX ai_messages_conversation_id_idx ON ai_messages (conversation_id, container_id, created_at);
CREATE INDEX ai_messages_container_id_idx ON ai_messages (container_id);
CREATE INDEX ai_messages_contact_id_idx ON ai_messages (contact_id);

COMMENT ON TABLE ai_messages IS 'Messages of an assistant conversation with their token usage; always in the container of their conversation.';

ALTER TABLE ai_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_messages FORCE ROW LEVEL SECURITY;

CREATE POLICY ai_messages_container ON ai_messages FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ai_messages TO orbis_app;
