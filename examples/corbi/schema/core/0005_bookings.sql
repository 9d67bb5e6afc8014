-- Bookings: a contact's appointment, optionally created by a user.

CREATE TYPE booking_status AS ENUM ('pending', 'confirmed', 'cancelled');

CREATE TABLE bookings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    title text NOT NULL,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    status booking_status NOT NULL DEFAULT 'pending',
    location text,
    notes text,
    external_calendar_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (end_time >= start_time)
);

COMMENT ON TABLE bookings IS 'Appointments with calendar stub integration';

CREATE INDEX bookings_organization_id_idx ON bookings (organization_id);
CREATE INDEX bookings_contact_id_idx ON bookings (contact_id);
CREATE INDEX bookings_created_by_user_id_idx ON bookings (created_by_user_id);

ALTER TABLE bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE bookings FORCE ROW LEVEL SECURITY;

-- Every member reads; viewers cannot write (IsOrgMemberWithRole).
CREATE POLICY bookings_read ON bookings FOR SELECT TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY bookings_insert ON bookings FOR INSERT TO corbi_app
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY bookings_update ON bookings FOR UPDATE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'))
    WITH CHECK (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));
CREATE POLICY bookings_delete ON bookings FOR DELETE TO corbi_app
    USING (organization_id = (select current_setting('app.org_id', true))::uuid AND (select current_org_role()) IN ('admin', 'staff'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE bookings TO corbi_app;
