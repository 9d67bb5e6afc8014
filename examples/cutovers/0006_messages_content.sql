-- The new shape of messages for every tenant created from now on: body (text)
-- becomes content (jsonb, {"text": ...}).
--
-- Copy this file to schema/core/0006_messages_content.sql when you run
-- examples/cutovers/reshape-message-body.toml: existing tenants get the new shape
-- online from that cutover (expand, dual-write, backfill, flips, contract), whose
-- contract records this migration as applied in each tenant's history. So
-- `strata drift` finds every reshaped tenant as this file leaves a new one, and
-- `strata migrate` applies it only to tenants created later, which are empty: the
-- rewrite below costs them nothing.

ALTER TABLE messages ADD COLUMN content jsonb;

-- strata-ignore work-after-access-exclusive: applied by migrate only to new tenants, whose messages are empty
UPDATE messages SET content = jsonb_build_object('text', body) WHERE body IS NOT NULL;

-- strata-ignore drop-column: existing tenants drop body at the cutover's contract; new tenants have no rows yet
ALTER TABLE messages DROP COLUMN body;
