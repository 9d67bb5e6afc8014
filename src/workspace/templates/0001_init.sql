-- core: init
--
-- The first core migration: contacts, the one record of a person in the product.
-- Other tables refer to people with a contact_id column referencing contacts (id).
-- Every table that holds tenant data enables and forces row level security and has a
-- policy for the application role (tenancy.app_role in strata.toml).

CREATE TABLE contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text NOT NULL,
    email text,
    -- E.164, e.g. +41791234567.
    phone text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE contacts IS 'The one record of a person: other tables reference people through contact_id.';

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;

-- The database is the tenant (database-per-tenant): the application role sees every row.
CREATE POLICY contacts_app ON contacts FOR ALL TO app USING (true) WITH CHECK (true);
