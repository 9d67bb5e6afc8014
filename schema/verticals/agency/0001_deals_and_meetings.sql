-- Agency vertical (Orbis / dreamlink-ops): the sales side. Every person is a contact: the
-- client company, the client's people, the agency's own staff. Deals and meetings are
-- tenant-wide business records, not container knowledge, so they are guarded by the
-- application role rather than scoped to a chat.

CREATE TYPE deal_stage AS ENUM ('lead', 'qualified', 'proposal', 'negotiation', 'won', 'lost');

COMMENT ON TYPE deal_stage IS 'Pipeline stage of an agency deal.';

CREATE TABLE deals (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL,
    stage deal_stage NOT NULL DEFAULT 'lead',
    -- The client: usually a company contact (contacts.is_company).
    client_contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE RESTRICT,
    -- The staff member who owns the deal.
    owner_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    value_amount numeric(14, 2) CONSTRAINT deals_value_amount_positive CHECK (value_amount >= 0),
    currency text NOT NULL DEFAULT 'EUR' CONSTRAINT deals_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    expected_close_on date,
    closed_at timestamptz,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deals_stage_idx ON deals (stage);
CREATE INDEX deals_client_contact_id_idx ON deals (client_contact_id);
CREATE INDEX deals_owner_contact_id_idx ON deals (owner_contact_id);

COMMENT ON TABLE deals IS 'Agency sales opportunities. The client and the owning staff member are contacts.';

ALTER TABLE deals ENABLE ROW LEVEL SECURITY;
ALTER TABLE deals FORCE ROW LEVEL SECURITY;

CREATE POLICY deals_tenant_app ON deals FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE deals TO orbis_app;

-- The people on a deal besides the client company and the owner: decision makers,
-- champions, collaborating staff.
CREATE TABLE deal_contacts (
    deal_id uuid NOT NULL REFERENCES deals (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'stakeholder',
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deal_id, contact_id)
);

CREATE INDEX deal_contacts_contact_id_idx ON deal_contacts (contact_id);

COMMENT ON TABLE deal_contacts IS 'Contacts involved in a deal and their role on it (stakeholder, decision maker, staff).';

ALTER TABLE deal_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE deal_contacts FORCE ROW LEVEL SECURITY;

CREATE POLICY deal_contacts_tenant_app ON deal_contacts FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE deal_contacts TO orbis_app;

CREATE TABLE meetings (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL,
    deal_id uuid REFERENCES deals (id) ON DELETE SET NULL,
    organizer_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    location text,
    agenda text,
    summary text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT meetings_ends_after_start CHECK (ends_at >= starts_at)
);

CREATE INDEX meetings_starts_at_idx ON meetings (starts_at);
CREATE INDEX meetings_deal_id_idx ON meetings (deal_id);
CREATE INDEX meetings_organizer_contact_id_idx ON meetings (organizer_contact_id);

COMMENT ON TABLE meetings IS 'Meetings logged by the agency, optionally about a deal; the organizer is a contact.';

ALTER TABLE meetings ENABLE ROW LEVEL SECURITY;
ALTER TABLE meetings FORCE ROW LEVEL SECURITY;

CREATE POLICY meetings_tenant_app ON meetings FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE meetings TO orbis_app;

CREATE TABLE meeting_contacts (
    meeting_id uuid NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    attended boolean,
    PRIMARY KEY (meeting_id, contact_id)
);

CREATE INDEX meeting_contacts_contact_id_idx ON meeting_contacts (contact_id);

COMMENT ON TABLE meeting_contacts IS 'Who was invited to a meeting (and whether they attended); every attendee is a contact.';

ALTER TABLE meeting_contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE meeting_contacts FORCE ROW LEVEL SECURITY;

CREATE POLICY meeting_contacts_tenant_app ON meeting_contacts FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE meeting_contacts TO orbis_app;
