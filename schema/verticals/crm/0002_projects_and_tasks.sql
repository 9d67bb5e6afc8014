-- CRM vertical: delivery (OrbitCRM projects and tasks, DevSphere time entries). The CRM
-- vertical owns its own projects and tasks; it never shares them with another vertical.

CREATE TYPE project_status AS ENUM ('lead', 'active', 'on_hold', 'completed', 'archived');

COMMENT ON TYPE project_status IS 'Lifecycle of a CRM project.';

CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'done');

COMMENT ON TYPE task_status IS 'Lifecycle of a CRM task.';

CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'urgent');

COMMENT ON TYPE task_priority IS 'Priority of a CRM task.';

CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The client the project is for.
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    opportunity_id uuid REFERENCES opportunities (id) ON DELETE SET NULL,
    owner_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    name text NOT NULL,
    description text,
    status project_status NOT NULL DEFAULT 'lead',
    deadline timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX projects_contact_id_idx ON projects (contact_id);
CREATE INDEX projects_opportunity_id_idx ON projects (opportunity_id);
CREATE INDEX projects_owner_contact_id_idx ON projects (owner_contact_id);
CREATE INDEX projects_status_idx ON projects (status);

COMMENT ON TABLE projects IS 'CRM projects delivered to a client contact.';

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;

CREATE POLICY projects_tenant_app ON projects FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE projects TO orbis_app;

CREATE TABLE tasks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    -- The contact the task is about (call back, send a quote).
    contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE,
    assignee_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    title text NOT NULL,
    description text,
    status task_status NOT NULL DEFAULT 'todo',
    priority task_priority NOT NULL DEFAULT 'medium',
    due_on date,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tasks_project_id_idx ON tasks (project_id);
CREATE INDEX tasks_contact_id_idx ON tasks (contact_id);
CREATE INDEX tasks_assignee_contact_id_status_idx ON tasks (assignee_contact_id, status);
CREATE INDEX tasks_created_by_contact_id_idx ON tasks (created_by_contact_id);
CREATE INDEX tasks_due_on_idx ON tasks (due_on);

COMMENT ON TABLE tasks IS 'CRM tasks about a contact and/or within a project; assignee and creator are contacts.';

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;

CREATE POLICY tasks_tenant_app ON tasks FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE tasks TO orbis_app;

CREATE TABLE time_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    task_id uuid REFERENCES tasks (id) ON DELETE SET NULL,
    -- Who did the work.
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    worked_on date NOT NULL,
    minutes integer NOT NULL CONSTRAINT time_entries_minutes_positive CHECK (minutes > 0),
    billable boolean NOT NULL DEFAULT true,
    description text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX time_entries_project_id_worked_on_idx ON time_entries (project_id, worked_on);
CREATE INDEX time_entries_task_id_idx ON time_entries (task_id);
CREATE INDEX time_entries_contact_id_worked_on_idx ON time_entries (contact_id, worked_on);

COMMENT ON TABLE time_entries IS 'Time a contact spent on a project (DevSphere timesheets), the basis for invoicing.';

ALTER TABLE time_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE time_entries FORCE ROW LEVEL SECURITY;

CREATE POLICY time_entries_tenant_app ON time_entries FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE time_entries TO orbis_app;
