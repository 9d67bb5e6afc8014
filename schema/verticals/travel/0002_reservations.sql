-- Travel vertical: what was actually booked with suppliers (flights, hotels, cars), and for
-- which travellers.

CREATE TYPE reservation_status AS ENUM ('held', 'confirmed', 'ticketed', 'cancelled', 'refunded');

COMMENT ON TYPE reservation_status IS 'State of a supplier reservation.';

CREATE TABLE reservations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    trip_id uuid NOT NULL REFERENCES trips (id) ON DELETE CASCADE,
    -- The itinerary segment this reservation covers, if it covers exactly one.
    segment_id uuid REFERENCES trip_segments (id) ON DELETE SET NULL,
    kind segment_kind NOT NULL,
    supplier text NOT NULL,
    confirmation_code text,
    status reservation_status NOT NULL DEFAULT 'held',
    amount numeric(14, 2) CONSTRAINT reservations_amount_positive CHECK (amount >= 0),
    currency text NOT NULL DEFAULT 'EUR' CONSTRAINT reservations_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    -- Until when a held reservation keeps its price.
    hold_expires_at timestamptz,
    booked_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    booked_at timestamptz,
    cancelled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX reservations_trip_id_idx ON reservations (trip_id);
CREATE INDEX reservations_segment_id_idx ON reservations (segment_id);
CREATE INDEX reservations_booked_by_contact_id_idx ON reservations (booked_by_contact_id);
CREATE INDEX reservations_confirmation_code_idx ON reservations (supplier, confirmation_code);

COMMENT ON TABLE reservations IS 'Bookings made with suppliers for a trip (flights, hotels, cars), with price and status.';

ALTER TABLE reservations ENABLE ROW LEVEL SECURITY;
ALTER TABLE reservations FORCE ROW LEVEL SECURITY;

CREATE POLICY reservations_tenant_app ON reservations FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE reservations TO orbis_app;

-- Which travellers a reservation is for (a flight booking for two of the trip's four
-- travellers), with their seat or room.
CREATE TABLE reservation_contacts (
    reservation_id uuid NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    seat_or_room text,
    ticket_number text,
    PRIMARY KEY (reservation_id, contact_id)
);

CREATE INDEX reservation_contacts_contact_id_idx ON reservation_contacts (contact_id);

COMMENT ON TABLE reservation_contacts IS 'The travellers (contacts) a reservation is for, with seat, room or ticket number.';

ALTER TABLE reservation_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE reservation_contacts FORCE ROW LEVEL SECURITY;

CREATE POLICY reservation_contacts_tenant_app ON reservation_contacts FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE reservation_contacts TO orbis_app;
