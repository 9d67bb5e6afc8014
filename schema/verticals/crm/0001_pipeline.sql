-- CRM vertical (OrbitCRM, DevSphere OS): the sales pipeline. Leads, opportunities, clients
-- and companies are all contacts (companies have contacts.is_company); the CRM only adds
-- what a CRM knows about them. It never alters the core contacts table: per-contact CRM data
-- lives in contact_pipeline, one row per contact.

CREATE TYPE contact_status AS ENUM ('lead', 'opportunity', 'client', 'churned');

COMMENT ON TYPE contact_status IS 'Pipeline stage of a contact.';

CREATE TABLE contact_pipeline (
    contact_id uuid PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
    status contact_status NOT NULL DEFAULT 'lead',
    -- Where the contact came from: 'website', 'referral', 'import', ...
    source text,
    tags text[] NOT NULL DEFAULT '{}',
    -- Company register number (Zefix UID, NIF, VIES VAT id) for company contacts.
    company_uid text,
    address_line1 text,
    address_line2 text,
    postal_code text,
    city text,
    region text,
    country_code text CONSTRAINT contact_pipeline_country_code_iso CHECK (country_code ~ '^[A-Z]{2}$'),
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX contact_pipeline_status_idx ON contact_pipeline (status);
CREATE INDEX contact_pipeline_tags_idx ON contact_pipeline USING gin (tags);

COMMENT ON TABLE contact_pipeline IS 'CRM facts about a contact (pipeline status, tags, company register number, billing address); one row per contact, keyed by contact_id.';

ALTER TABLE contact_pipeline ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_pipeline FORCE ROW LEVEL SECURITY;

CREATE POLICY contact_pipeline_tenant_app ON contact_pipeline FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE contact_pipeline TO orbis_app;

CREATE TYPE opportunity_stage AS ENUM ('discovery', 'proposal', 'negotiation', 'won', 'lost');

COMMENT ON TYPE opportunity_stage IS 'Stage of a CRM opportunity.';

CREATE TABLE opportunities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    owner_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    title text NOT NULL,
    stage opportunity_stage NOT NULL DEFAULT 'discovery',
    amount numeric(14, 2) CONSTRAINT opportunities_amount_positive CHECK (amount >= 0),
    currency text NOT NULL DEFAULT 'CHF' CONSTRAINT opportunities_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    probability_percent integer CONSTRAINT opportunities_probability_range CHECK (probability_percent BETWEEN 0 AND 100),
    expected_close_on date,
    closed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX opportunities_contact_id_idx ON opportunities (contact_id);
CREATE INDEX opportunities_owner_contact_id_idx ON opportunities (owner_contact_id);
CREATE INDEX opportunities_stage_idx ON opportunities (stage);

COMMENT ON TABLE opportunities IS 'Potential revenue with a contact (person or company), owned by a staff contact.';

ALTER TABLE opportunities ENABLE ROW LEVEL SECURITY;
ALTER TABLE opportunities FORCE ROW LEVEL SECURITY;

CREATE POLICY opportunities_tenant_app ON opportunities FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE opportunities TO orbis_app;
