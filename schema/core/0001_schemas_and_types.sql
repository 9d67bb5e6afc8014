-- Orbis core, layer 1: every tenant database has it.
--
-- The application role orbis_app is created by `strata tenant create` / the cluster
-- bootstrap (roles are cluster-wide), so this schema assumes it exists and never creates it.
--
-- Tenancy is database-per-tenant: there is no tenant key column anywhere. Inside a tenant,
-- every group chat is a container (a walled garden); container-scoped tables carry
-- container_id and their policies only show rows of the container named by the session
-- setting orbis.container_id.

-- Extensions live in their own schema, never in public. Core itself needs none; verticals
-- install theirs here (the ai vertical installs pgvector).
CREATE SCHEMA IF NOT EXISTS extensions;

COMMENT ON SCHEMA extensions IS 'Home of every PostgreSQL extension a layer installs (never public).';

GRANT USAGE ON SCHEMA extensions TO orbis_app;

-- The canonical home of events (orbis_state.events); nothing else belongs here.
CREATE SCHEMA IF NOT EXISTS orbis_state;

COMMENT ON SCHEMA orbis_state IS 'Canonical event history of the tenant: orbis_state.events, one row per thing that happened, discriminated by kind.';

GRANT USAGE ON SCHEMA orbis_state TO orbis_app;

-- The channels Orbis reaches people and chats through. A channel identifier is always a
-- routable address (an E.164 phone number, an email address, a Slack id ...), never a
-- WhatsApp LID.
CREATE TYPE channel_kind AS ENUM ('whatsapp', 'sms', 'email', 'slack', 'telegram', 'instagram', 'web');

COMMENT ON TYPE channel_kind IS 'A channel Orbis talks through; identifiers on it are routable addresses, never WhatsApp LIDs.';

-- direct: a one-to-one chat with a contact; group: a group chat; workspace: the tenant-wide
-- back-office scope (at most one per tenant) used by dashboards and operators.
CREATE TYPE container_kind AS ENUM ('direct', 'group', 'workspace');

COMMENT ON TYPE container_kind IS 'direct = one-to-one chat, group = group chat, workspace = the single tenant-wide back-office scope.';

CREATE TYPE container_role AS ENUM ('member', 'admin', 'observer');

COMMENT ON TYPE container_role IS 'What a contact is inside a container.';

CREATE TYPE message_direction AS ENUM ('inbound', 'outbound');

COMMENT ON TYPE message_direction IS 'inbound = sent by a person to Orbis or to the chat, outbound = sent by Orbis.';

CREATE TYPE knowledge_kind AS ENUM ('fact', 'decision', 'note', 'link', 'file');

COMMENT ON TYPE knowledge_kind IS 'What a knowledge item records.';
