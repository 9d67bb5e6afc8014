-- Notifications for users.

CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body text NOT NULL,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE notifications IS 'Notifications for a user';

CREATE INDEX notifications_org_id_idx ON notifications (org_id);
CREATE INDEX notifications_user_id_idx ON notifications (user_id);

ALTER TABLE notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE notifications FORCE ROW LEVEL SECURITY;

CREATE POLICY notifications_read ON notifications FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY notifications_insert ON notifications FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY notifications_update ON notifications FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY notifications_delete ON notifications FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE notifications TO devsphere_app;
