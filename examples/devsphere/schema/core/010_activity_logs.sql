-- Activity log: the organization's history of changes.

CREATE TABLE activity_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    action text NOT NULL,
    entity_type text,
    entity_id uuid,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE activity_logs IS 'The organization''s history of changes';

CREATE INDEX activity_logs_org_id_idx ON activity_logs (org_id);
CREATE INDEX activity_logs_actor_user_id_idx ON activity_logs (actor_user_id);

ALTER TABLE activity_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE activity_logs FORCE ROW LEVEL SECURITY;

CREATE POLICY activity_logs_read ON activity_logs FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY activity_logs_insert ON activity_logs FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY activity_logs_update ON activity_logs FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY activity_logs_delete ON activity_logs FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE activity_logs TO devsphere_app;
