-- Travel vertical (nova-db): booking trips for people. Travellers are contacts, like every
-- other person: a trip names them through trip_contacts, never through a travellers table.

CREATE TYPE trip_status AS ENUM ('planning', 'booked', 'in_progress', 'completed', 'cancelled');

COMMENT ON TYPE trip_status IS 'Lifecycle of a trip.';

CREATE TABLE trips (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL,
    status trip_status NOT NULL DEFAULT 'planning',
    -- Who asked for the trip (a traveller, an assistant, a company contact).
    requested_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    -- The staff member planning it.
    planner_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    destination text,
    starts_on date,
    ends_on date,
    budget_amount numeric(14, 2) CONSTRAINT trips_budget_amount_positive CHECK (budget_amount >= 0),
    currency text NOT NULL DEFAULT 'EUR' CONSTRAINT trips_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trips_ends_after_start CHECK (ends_on >= starts_on)
);

CREATE INDEX trips_status_starts_on_idx ON trips (status, starts_on);
CREATE INDEX trips_requested_by_contact_id_idx ON trips (requested_by_contact_id);
CREATE INDEX trips_planner_contact_id_idx ON trips (planner_contact_id);

COMMENT ON TABLE trips IS 'Trips planned and booked for contacts.';

ALTER TABLE trips ENABLE ROW LEVEL SECURITY;
ALTER TABLE trips FORCE ROW LEVEL SECURITY;

CREATE POLICY trips_tenant_app ON trips FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE trips TO orbis_app;

CREATE TABLE trip_contacts (
    trip_id uuid NOT NULL REFERENCES trips (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    -- The traveller who receives the travel documents and is called first.
    is_lead_traveller boolean NOT NULL DEFAULT false,
    -- Meal, seat and accessibility preferences for this trip.
    preferences text,
    PRIMARY KEY (trip_id, contact_id)
);

CREATE INDEX trip_contacts_contact_id_idx ON trip_contacts (contact_id);
-- At most one lead traveller per trip.
CREATE UNIQUE INDEX trip_contacts_one_lead_idx ON trip_contacts (trip_id) WHERE is_lead_traveller;

COMMENT ON TABLE trip_contacts IS 'The travellers of a trip; every traveller is a contact.';

ALTER TABLE trip_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE trip_contacts FORCE ROW LEVEL SECURITY;

CREATE POLICY trip_contacts_tenant_app ON trip_contacts FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE trip_contacts TO orbis_app;

CREATE TYPE segment_kind AS ENUM ('flight', 'train', 'hotel', 'car', 'transfer', 'activity', 'other');

COMMENT ON TYPE segment_kind IS 'What an itinerary segment is.';

-- The itinerary: an ordered list of segments per trip.
CREATE TABLE trip_segments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    trip_id uuid NOT NULL REFERENCES trips (id) ON DELETE CASCADE,
    position integer NOT NULL,
    kind segment_kind NOT NULL,
    origin text,
    destination text,
    departs_at timestamptz,
    arrives_at timestamptz,
    -- Airline, rail operator, hotel or rental company.
    carrier text,
    -- Flight or train number, room type.
    service_ref text,
    notes text,
    CONSTRAINT trip_segments_trip_id_position_key UNIQUE (trip_id, position),
    CONSTRAINT trip_segments_arrives_after_departure CHECK (arrives_at >= departs_at)
);

COMMENT ON TABLE trip_segments IS 'The itinerary of a trip: flights, trains, hotel stays and activities in order.';

ALTER TABLE trip_segments ENABLE ROW LEVEL SECURITY;
ALTER TABLE trip_segments FORCE ROW LEVEL SECURITY;

CREATE POLICY trip_segments_tenant_app ON trip_segments FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE trip_segments TO orbis_app;
