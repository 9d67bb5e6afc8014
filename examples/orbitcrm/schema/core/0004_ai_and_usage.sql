-- Phase 1: AI conversations and token usage. Members see their own conversations
-- and usage; owners see all of their organization's.

CREATE TABLE ai_conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    title text,
    model text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE ai_conversations IS 'AI chat conversations';

CREATE INDEX ai_conversations_org_id_idx ON ai_conversations (org_id);
CREATE INDEX ai_conversations_user_id_idx ON ai_conversations (user_id);
CREATE INDEX ai_conversations_contact_id_idx ON ai_conversations (contact_id);
CREATE INDEX ai_conversations_project_id_idx ON ai_conversations (project_id);

ALTER TABLE ai_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_conversations FORCE ROW LEVEL SECURITY;

CREATE POLICY ai_conversations_own ON ai_conversations FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (user_id = (select current_setting('app.user_id', true))::uuid OR (select is_org_owner())))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ai_conversations TO orbitcrm_app;

-- The seed scopes messages through their conversation; strata's shared-mode
-- discipline puts the tenant key on every tenant row, so org_id is carried here too.
CREATE TABLE ai_messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES ai_conversations (id) ON DELETE CASCADE,
    role ai_message_role NOT NULL,
    content text NOT NULL,
    tokens_in integer NOT NULL DEFAULT 0,
    tokens_out integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE ai_messages IS 'Messages within AI conversations';

CREATE INDEX ai_messages_org_id_idx ON ai_messages (org_id);
CREATE INDEX ai_messages_conversation_id_idx ON ai_messages (conversation_id);

ALTER TABLE ai_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_messages FORCE ROW LEVEL SECURITY;

CREATE POLICY ai_messages_tenant ON ai_messages FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE ai_messages TO orbitcrm_app;

CREATE TABLE usage_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid REFERENCES profiles (id) ON DELETE SET NULL,
    model text NOT NULL,
    tokens_in integer NOT NULL DEFAULT 0,
    tokens_out integer NOT NULL DEFAULT 0,
    multiplier numeric(6, 3) NOT NULL DEFAULT 1,
    effective_tokens integer NOT NULL DEFAULT 0,
    conversation_id uuid REFERENCES ai_conversations (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE usage_logs IS 'Token usage tracking for billing';

CREATE INDEX usage_logs_org_id_idx ON usage_logs (org_id);
CREATE INDEX usage_logs_user_id_idx ON usage_logs (user_id);
CREATE INDEX usage_logs_conversation_id_idx ON usage_logs (conversation_id);
CREATE INDEX usage_logs_created_at_idx ON usage_logs (created_at);

ALTER TABLE usage_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_logs FORCE ROW LEVEL SECURITY;

CREATE POLICY usage_logs_own ON usage_logs FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (user_id = (select current_setting('app.user_id', true))::uuid OR (select is_org_owner())))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT ON TABLE usage_logs TO orbitcrm_app;
