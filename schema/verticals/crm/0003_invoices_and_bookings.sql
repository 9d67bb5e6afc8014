-- CRM vertical: billing (OrbitCRM invoices with Swiss QR-bill data) and calendar bookings.

CREATE TYPE invoice_status AS ENUM ('draft', 'sent', 'paid', 'overdue', 'cancelled');

COMMENT ON TYPE invoice_status IS 'Lifecycle of an invoice.';

CREATE TABLE invoices (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    invoice_number text NOT NULL UNIQUE,
    -- The billed party (person or company contact).
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    status invoice_status NOT NULL DEFAULT 'draft',
    currency text NOT NULL DEFAULT 'CHF' CONSTRAINT invoices_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    amount_total numeric(14, 2) NOT NULL DEFAULT 0 CONSTRAINT invoices_amount_total_positive CHECK (amount_total >= 0),
    issued_on date,
    due_on date,
    paid_at timestamptz,
    -- Swiss QR-bill reference and the IBAN the payment goes to.
    qr_reference text,
    iban text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX invoices_contact_id_idx ON invoices (contact_id);
CREATE INDEX invoices_project_id_idx ON invoices (project_id);
CREATE INDEX invoices_status_due_on_idx ON invoices (status, due_on);

COMMENT ON TABLE invoices IS 'Invoices to a contact, optionally for a project, with Swiss QR-bill data.';

ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoices FORCE ROW LEVEL SECURITY;

CREATE POLICY invoices_tenant_app ON invoices FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE invoices TO orbis_app;

CREATE TABLE invoice_lines (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position integer NOT NULL,
    description text NOT NULL,
    quantity numeric(12, 3) NOT NULL DEFAULT 1,
    unit_price numeric(14, 2) NOT NULL,
    amount numeric(14, 2) NOT NULL,
    time_entry_id uuid REFERENCES time_entries (id) ON DELETE SET NULL,
    CONSTRAINT invoice_lines_invoice_id_position_key UNIQUE (invoice_id, position)
);

CREATE INDEX invoice_lines_time_entry_id_idx ON invoice_lines (time_entry_id);

COMMENT ON TABLE invoice_lines IS 'The lines of an invoice, optionally billing a time entry.';

ALTER TABLE invoice_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE invoice_lines FORCE ROW LEVEL SECURITY;

CREATE POLICY invoice_lines_tenant_app ON invoice_lines FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE invoice_lines TO orbis_app;

CREATE TYPE booking_status AS ENUM ('tentative', 'confirmed', 'cancelled');

COMMENT ON TYPE booking_status IS 'State of a calendar booking.';

CREATE TABLE bookings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    title text NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    location text,
    status booking_status NOT NULL DEFAULT 'confirmed',
    -- The Google / Outlook event this booking is synced with.
    external_event_id text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bookings_ends_after_start CHECK (ends_at >= starts_at)
);

CREATE INDEX bookings_contact_id_idx ON bookings (contact_id);
CREATE INDEX bookings_project_id_idx ON bookings (project_id);
CREATE INDEX bookings_starts_at_idx ON bookings (starts_at);

COMMENT ON TABLE bookings IS 'Calendar bookings with a contact, synced with an external calendar.';

ALTER TABLE bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE bookings FORCE ROW LEVEL SECURITY;

CREATE POLICY bookings_tenant_app ON bookings FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE bookings TO orbis_app;
