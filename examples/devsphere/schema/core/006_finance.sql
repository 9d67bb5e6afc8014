-- Finance: client invoices and expenses (owners and admins write).

CREATE TABLE client_invoices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    client_id uuid NOT NULL REFERENCES clients (id) ON DELETE RESTRICT,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    number text NOT NULL,
    amount numeric(14, 2) NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    due_date date,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, number)
);

COMMENT ON TABLE client_invoices IS 'Finance: invoices to clients';

CREATE INDEX client_invoices_org_id_idx ON client_invoices (org_id);
CREATE INDEX client_invoices_client_id_idx ON client_invoices (client_id);
CREATE INDEX client_invoices_project_id_idx ON client_invoices (project_id);

ALTER TABLE client_invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE client_invoices FORCE ROW LEVEL SECURITY;

CREATE POLICY client_invoices_read ON client_invoices FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY client_invoices_insert ON client_invoices FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY client_invoices_update ON client_invoices FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY client_invoices_delete ON client_invoices FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE client_invoices TO devsphere_app;

CREATE TABLE expenses (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    submitted_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    amount numeric(14, 2) NOT NULL,
    description text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE expenses IS 'Finance: expenses submitted by users';

CREATE INDEX expenses_org_id_idx ON expenses (org_id);
CREATE INDEX expenses_project_id_idx ON expenses (project_id);
CREATE INDEX expenses_submitted_by_user_id_idx ON expenses (submitted_by_user_id);

ALTER TABLE expenses ENABLE ROW LEVEL SECURITY;
ALTER TABLE expenses FORCE ROW LEVEL SECURITY;

CREATE POLICY expenses_read ON expenses FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY expenses_insert ON expenses FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY expenses_update ON expenses FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY expenses_delete ON expenses FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE expenses TO devsphere_app;
