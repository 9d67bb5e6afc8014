-- Messaging vertical: appointments booked through a conversation (Corbi bookings).

CREATE TYPE booking_status AS ENUM ('pending', 'confirmed', 'cancelled');

COMMENT ON TYPE booking_status IS 'State of an appointment booking.';

CREATE TABLE bookings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    created_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    title text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status booking_status NOT NULL DEFAULT 'pending',
    location text,
    notes text,
    external_calendar_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bookings_ends_after_start CHECK (ends_at >= starts_at)
);

CREATE INDEX bookings_contact_id_idx ON bookings (contact_id);
CREATE INDEX bookings_created_by_contact_id_idx ON bookings (created_by_contact_id);
CREATE INDEX bookings_starts_at_idx ON bookings (starts_at);

COMMENT ON TABLE bookings IS 'Appointments with a contact, booked through messaging and mirrored to a calendar.';

ALTER TABLE bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE bookings FORCE ROW LEVEL SECURITY;

CREATE POLICY bookings_tenant_app ON bookings FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE bookings TO orbis_app;
