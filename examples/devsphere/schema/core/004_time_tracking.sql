-- Delivery: time entries and timesheets.

CREATE TABLE timesheets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    week_start date NOT NULL,
    status text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, week_start)
);

COMMENT ON TABLE timesheets IS 'Delivery: a user''s weekly timesheet';

CREATE INDEX timesheets_org_id_idx ON timesheets (org_id);

ALTER TABLE timesheets ENABLE ROW LEVEL SECURITY;
ALTER TABLE timesheets FORCE ROW LEVEL SECURITY;

CREATE POLICY timesheets_read ON timesheets FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY timesheets_insert ON timesheets FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY timesheets_update ON timesheets FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY timesheets_delete ON timesheets FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE timesheets TO devsphere_app;

CREATE TABLE time_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_task_id uuid REFERENCES project_tasks (id) ON DELETE SET NULL,
    timesheet_id uuid REFERENCES timesheets (id) ON DELETE SET NULL,
    minutes integer NOT NULL,
    entry_date date NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE time_entries IS 'Delivery: time a user spent on a task';

CREATE INDEX time_entries_org_id_idx ON time_entries (org_id);
CREATE INDEX time_entries_user_id_idx ON time_entries (user_id);
CREATE INDEX time_entries_project_task_id_idx ON time_entries (project_task_id);
CREATE INDEX time_entries_timesheet_id_idx ON time_entries (timesheet_id);

ALTER TABLE time_entries ENABLE ROW LEVEL SECURITY;
ALTER TABLE time_entries FORCE ROW LEVEL SECURITY;

CREATE POLICY time_entries_read ON time_entries FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY time_entries_insert ON time_entries FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY time_entries_update ON time_entries FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));
CREATE POLICY time_entries_delete ON time_entries FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin', 'manager', 'member'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE time_entries TO devsphere_app;
