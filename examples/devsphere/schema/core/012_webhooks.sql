-- Webhook endpoints (secret encrypted with pgcrypto) and their deliveries.

CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url text NOT NULL,
    secret_encrypted bytea NOT NULL,
    events text[] NOT NULL DEFAULT '{}',
    is_active boolean NOT NULL DEFAULT true,
    deleted_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE webhook_endpoints IS 'Webhook endpoints; the secret is encrypted with pgcrypto (soft-deleted)';

CREATE INDEX webhook_endpoints_org_id_idx ON webhook_endpoints (org_id);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;

CREATE POLICY webhook_endpoints_read ON webhook_endpoints FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY webhook_endpoints_insert ON webhook_endpoints FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY webhook_endpoints_update ON webhook_endpoints FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY webhook_endpoints_delete ON webhook_endpoints FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE webhook_endpoints TO devsphere_app;

CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event text NOT NULL,
    payload jsonb NOT NULL,
    response_code integer,
    attempt integer NOT NULL DEFAULT 1,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE webhook_deliveries IS 'Attempts to deliver an event to a webhook endpoint';

CREATE INDEX webhook_deliveries_org_id_idx ON webhook_deliveries (org_id);
CREATE INDEX webhook_deliveries_endpoint_id_idx ON webhook_deliveries (endpoint_id);

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;

CREATE POLICY webhook_deliveries_read ON webhook_deliveries FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY webhook_deliveries_insert ON webhook_deliveries FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY webhook_deliveries_update ON webhook_deliveries FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY webhook_deliveries_delete ON webhook_deliveries FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE webhook_deliveries TO devsphere_app;
