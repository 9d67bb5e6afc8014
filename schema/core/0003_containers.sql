-- Every chat is a container, a walled garden: what is said or learned inside it stays
-- inside it unless a container_share row records the crossing. Container-scoped tables carry
-- container_id NOT NULL REFERENCES containers(id), and their policy only lets orbis_app see
-- and write rows of the container named by the session setting orbis.container_id.

CREATE TABLE containers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind container_kind NOT NULL,
    name text NOT NULL,
    -- The channel's own address of the chat (a WhatsApp group id, a Slack channel id). It
    -- identifies the chat, never a person, and is never a WhatsApp LID.
    channel channel_kind,
    channel_ref text,
    created_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    CONSTRAINT containers_channel_ref_key UNIQUE (channel, channel_ref),
    CONSTRAINT containers_channel_ref_pair CHECK ((channel IS NULL) = (channel_ref IS NULL))
);

-- A tenant has at most one workspace container (the back-office scope).
CREATE UNIQUE INDEX containers_single_workspace_idx ON containers (kind) WHERE kind = 'workspace';

COMMENT ON TABLE containers IS 'Chats as walled gardens: direct chats, group chats and the single tenant-wide workspace scope. Knowledge never leaves a container without a container_share row.';
COMMENT ON COLUMN containers.channel_ref IS 'The channel identifier of the chat itself (e.g. a WhatsApp group id); never an identifier of a person.';

ALTER TABLE containers ENABLE ROW LEVEL SECURITY;
ALTER TABLE containers FORCE ROW LEVEL SECURITY;

-- The router must resolve an incoming chat to its container before it can set
-- orbis.container_id, so the container directory itself is readable tenant-wide.
CREATE POLICY containers_tenant_app ON containers FOR ALL TO orbis_app USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE containers TO orbis_app;

CREATE TABLE container_members (
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    role container_role NOT NULL DEFAULT 'member',
    joined_at timestamptz NOT NULL DEFAULT now(),
    left_at timestamptz,
    PRIMARY KEY (container_id, contact_id)
);

-- container_id is covered by the primary key's leading column.
CREATE INDEX container_members_contact_id_idx ON container_members (contact_id);

COMMENT ON TABLE container_members IS 'Which contacts take part in which container, with their role.';

ALTER TABLE container_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE container_members FORCE ROW LEVEL SECURITY;

CREATE POLICY container_members_container ON container_members FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE container_members TO orbis_app;
