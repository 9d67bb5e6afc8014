-- contacts is the one canonical person record. Everywhere a person appears, the table holds
-- a contact_id (or <role>_contact_id) referencing contacts(id). There is no users table and
-- no WhatsApp LID anywhere: the phone number (E.164) is the identifier Orbis routes by.

CREATE TABLE contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Canonical routing identifier: E.164, e.g. +41791234567.
    phone text UNIQUE CONSTRAINT contacts_phone_e164 CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email text,
    slack_id text UNIQUE,
    display_name text,
    given_name text,
    family_name text,
    -- Hybrid party model (OrbitCRM): a company is a contact too, so deals, invoices and
    -- trips can name a company with the same contact_id reference as a person.
    is_company boolean NOT NULL DEFAULT false,
    company_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    locale text,
    time_zone text,
    notes text,
    -- Set when duplicate records are merged; the merged row stays so that history that
    -- references it still resolves.
    merged_into_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_identifiable CHECK (
        phone IS NOT NULL OR email IS NOT NULL OR slack_id IS NOT NULL OR display_name IS NOT NULL
    ),
    CONSTRAINT contacts_not_merged_into_self CHECK (merged_into_contact_id <> id)
);

CREATE INDEX contacts_email_idx ON contacts (lower(email));
CREATE INDEX contacts_display_name_idx ON contacts (lower(display_name));
CREATE INDEX contacts_company_contact_id_idx ON contacts (company_contact_id);
CREATE INDEX contacts_merged_into_contact_id_idx ON contacts (merged_into_contact_id);

COMMENT ON TABLE contacts IS 'The canonical person (and company) record. Every other table references people through contact_id; phone (E.164) is the routing identifier; WhatsApp LIDs are never stored.';
COMMENT ON COLUMN contacts.phone IS 'Canonical routing identifier, E.164 (+ and 7 to 15 digits).';
COMMENT ON COLUMN contacts.is_company IS 'true: the contact is an organisation (hybrid party model), false: a person.';
COMMENT ON COLUMN contacts.company_contact_id IS 'The company contact this person belongs to, if any.';

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;

-- Contacts are tenant-wide (one person across many chats); the database is the tenant.
CREATE POLICY contacts_tenant_app ON contacts FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE contacts TO orbis_app;

-- Further routable handles of a contact: a second phone, an email alias, a Telegram chat id,
-- an Instagram scoped id. Phone-based channels only accept E.164 numbers, so a WhatsApp LID
-- cannot be stored here by mistake.
CREATE TABLE contact_identities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    channel channel_kind NOT NULL,
    identifier text NOT NULL,
    verified_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contact_identities_channel_identifier_key UNIQUE (channel, identifier),
    CONSTRAINT contact_identities_phone_e164 CHECK (
        channel NOT IN ('whatsapp', 'sms') OR identifier ~ '^\+[1-9][0-9]{6,14}$'
    )
);

CREATE INDEX contact_identities_contact_id_idx ON contact_identities (contact_id);

COMMENT ON TABLE contact_identities IS 'Additional routable handles of a contact (phone, email, Slack, Telegram, Instagram). Never a WhatsApp LID: WhatsApp and SMS identifiers must be E.164 numbers.';

ALTER TABLE contact_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_identities FORCE ROW LEVEL SECURITY;

CREATE POLICY contact_identities_tenant_app ON contact_identities FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE contact_identities TO orbis_app;
