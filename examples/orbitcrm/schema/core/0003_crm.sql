-- Phase 1 and 3: contacts (hybrid party model), projects, invoices, tasks, bookings.
-- Every row carries org_id; owners and members of an organization share its CRM data.

CREATE TABLE contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    is_company boolean NOT NULL DEFAULT false,
    company_uid text,
    company_name text,
    first_name text,
    last_name text,
    email text,
    phone text,
    address_street text,
    address_postal_code text,
    address_city text,
    address_country text,
    status contact_status NOT NULL DEFAULT 'lead',
    tags text[] NOT NULL DEFAULT '{}',
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE contacts IS 'Hybrid party model: a person or a company';

CREATE INDEX contacts_org_id_idx ON contacts (org_id);
CREATE INDEX contacts_status_idx ON contacts (org_id, status);

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;

CREATE POLICY contacts_tenant ON contacts FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE contacts TO orbitcrm_app;

CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    name text NOT NULL,
    description text,
    status project_status NOT NULL DEFAULT 'lead',
    deadline timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE projects IS 'Project management';

CREATE INDEX projects_org_id_idx ON projects (org_id);
CREATE INDEX projects_contact_id_idx ON projects (contact_id);

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;

CREATE POLICY projects_tenant ON projects FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE projects TO orbitcrm_app;

CREATE TABLE invoices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    invoice_number text NOT NULL,
    currency text NOT NULL DEFAULT 'CHF',
    amount_total numeric(14, 2) NOT NULL DEFAULT 0,
    status invoice_status NOT NULL DEFAULT 'draft',
    due_date date,
    paid_at timestamptz,
    qr_reference text,
    iban_used text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, invoice_number)
);

COMMENT ON TABLE invoices IS 'Invoices with Swiss QR-Bill support';

CREATE INDEX invoices_project_id_idx ON invoices (project_id);
CREATE INDEX invoices_contact_id_idx ON invoices (contact_id);

ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;

CREATE POLICY invoices_tenant ON invoices FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE invoices TO orbitcrm_app;

CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    title text NOT NULL,
    description text,
    status task_status NOT NULL DEFAULT 'todo',
    priority task_priority NOT NULL DEFAULT 'medium',
    due_date date,
    created_by uuid REFERENCES profiles (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tasks IS 'Task management';

CREATE INDEX tasks_org_id_idx ON tasks (org_id);
CREATE INDEX tasks_contact_id_idx ON tasks (contact_id);
CREATE INDEX tasks_project_id_idx ON tasks (project_id);
CREATE INDEX tasks_created_by_idx ON tasks (created_by);
CREATE INDEX tasks_due_date_idx ON tasks (due_date);

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;

CREATE POLICY tasks_tenant ON tasks FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE tasks TO orbitcrm_app;

CREATE TABLE bookings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    external_event_id text,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    title text NOT NULL,
    location text,
    status text NOT NULL DEFAULT 'confirmed',
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time >= start_time)
);

COMMENT ON TABLE bookings IS 'External calendar sync (deferred in the seed)';

CREATE INDEX bookings_org_id_idx ON bookings (org_id);
CREATE INDEX bookings_project_id_idx ON bookings (project_id);
CREATE INDEX bookings_contact_id_idx ON bookings (contact_id);

ALTER TABLE bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE bookings FORCE ROW LEVEL SECURITY;

CREATE POLICY bookings_tenant ON bookings FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE bookings TO orbitcrm_app;
