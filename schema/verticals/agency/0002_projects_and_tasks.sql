-- Agency vertical: delivery (PM). Staff are contacts too: a staff assignment is a
-- contact_id on a project, never a row in a separate staff or users table.

CREATE TYPE project_status AS ENUM ('planned', 'active', 'on_hold', 'completed', 'cancelled');

COMMENT ON TYPE project_status IS 'Lifecycle of an agency project.';

CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'blocked', 'done');

COMMENT ON TYPE task_status IS 'Lifecycle of an agency task.';

CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'urgent');

COMMENT ON TYPE task_priority IS 'Priority of an agency task.';

CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    description text,
    status project_status NOT NULL DEFAULT 'planned',
    client_contact_id uuid REFERENCES contacts (id) ON DELETE RESTRICT,
    -- The deal this project was won from, if any.
    deal_id uuid REFERENCES deals (id) ON DELETE SET NULL,
    starts_on date,
    due_on date,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX projects_status_idx ON projects (status);
CREATE INDEX projects_client_contact_id_idx ON projects (client_contact_id);
CREATE INDEX projects_deal_id_idx ON projects (deal_id);

COMMENT ON TABLE projects IS 'Agency delivery projects for a client contact, optionally won from a deal.';

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;

CREATE POLICY projects_tenant_app ON projects FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE projects TO orbis_app;

-- Staff assignments: which contact works on which project, in which role, for how much of
-- their time.
CREATE TABLE project_assignments (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    role text NOT NULL,
    allocation_percent integer CONSTRAINT project_assignments_allocation_range CHECK (allocation_percent BETWEEN 0 AND 100),
    assigned_on date NOT NULL DEFAULT current_date,
    released_on date,
    PRIMARY KEY (project_id, contact_id)
);

CREATE INDEX project_assignments_contact_id_idx ON project_assignments (contact_id);

COMMENT ON TABLE project_assignments IS 'Staff assignments: a contact working on a project, with role and allocation.';

ALTER TABLE project_assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_assignments FORCE ROW LEVEL SECURITY;

CREATE POLICY project_assignments_tenant_app ON project_assignments FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE project_assignments TO orbis_app;

CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    title text NOT NULL,
    description text,
    status task_status NOT NULL DEFAULT 'todo',
    priority task_priority NOT NULL DEFAULT 'medium',
    assignee_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    due_on date,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tasks_project_id_status_idx ON tasks (project_id, status);
CREATE INDEX tasks_assignee_contact_id_idx ON tasks (assignee_contact_id);
CREATE INDEX tasks_created_by_contact_id_idx ON tasks (created_by_contact_id);
CREATE INDEX tasks_due_on_idx ON tasks (due_on);

COMMENT ON TABLE tasks IS 'Agency tasks, optionally within a project; assignee and creator are contacts.';

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;

CREATE POLICY tasks_tenant_app ON tasks FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE tasks TO orbis_app;
