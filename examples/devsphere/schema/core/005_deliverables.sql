-- Delivery: deliverables of a project.

CREATE TABLE deliverables (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title text NOT NULL,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE deliverables IS 'Delivery: what a project delivers';

CREATE INDEX deliverables_org_id_idx ON deliverables (org_id);
CREATE INDEX deliverables_project_id_idx ON deliverables (project_id);

ALTER TABLE deliverables ENABLE ROW LEVEL SECURITY;
ALTER TABLE deliverables FORCE ROW LEVEL SECURITY;

CREATE POLICY deliverables_read ON deliverables FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY deliverables_insert ON deliverables FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY deliverables_update ON deliverables FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY deliverables_delete ON deliverables FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE deliverables TO devsphere_app;
