-- API keys (hashed, never stored in clear) and the log of API requests.

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL,
    key_prefix text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    scopes text[] NOT NULL DEFAULT '{}',
    created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    last_used_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE api_keys IS 'API keys: a prefix and a hash, never the key';

CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);
CREATE INDEX api_keys_created_by_user_id_idx ON api_keys (created_by_user_id);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;

CREATE POLICY api_keys_read ON api_keys FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY api_keys_insert ON api_keys FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY api_keys_update ON api_keys FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY api_keys_delete ON api_keys FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE api_keys TO devsphere_app;

CREATE TABLE api_request_logs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    method text NOT NULL,
    path text NOT NULL,
    status_code integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE api_request_logs IS 'Requests made with an API key';

CREATE INDEX api_request_logs_org_id_idx ON api_request_logs (org_id);
CREATE INDEX api_request_logs_api_key_id_idx ON api_request_logs (api_key_id);

ALTER TABLE api_request_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_request_logs FORCE ROW LEVEL SECURITY;

CREATE POLICY api_request_logs_read ON api_request_logs FOR SELECT TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid);
CREATE POLICY api_request_logs_insert ON api_request_logs FOR INSERT TO devsphere_app
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY api_request_logs_update ON api_request_logs FOR UPDATE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));
CREATE POLICY api_request_logs_delete ON api_request_logs FOR DELETE TO devsphere_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (select current_user_role()) IN ('owner', 'admin'));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE api_request_logs TO devsphere_app;
