-- Approvals: a request on any entity, decided by an owner or admin.

CREATE TABLE approvals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    requested_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    decided_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    status text NOT NULL DEFAULT 'pending',
    decided_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE approvals IS 'A request on any entity, decided by an owner or admin';

CREATE INDEX approvals_org_id_idx ON approvals (org_id);
CREATE INDEX approvals_requested_by_user_id_idx ON approvals (requested_by_user_id);
CREATE INDEX approvals_decided_by_user_id_idx ON approvals (decided_by_user_id);

ALTER TABLE approvals ENABLE ROW LEVEL SECURITY;
ALTER TABLE approvals FORCE ROW LEVEL SECURITY;

CREATE POLICY approvals_read ON approvals FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY approvals_insert ON approvals FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY approvals_update ON approvals FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY approvals_delete ON approvals FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE approvals TO devsphere_app;
