-- AI vertical: long-term memories of the assistant (Org in a Box). A memory is knowledge,
-- so it belongs to the container it was learned in and is recalled only there; the
-- private / team / org visibility of Org in a Box is expressed by the container.

CREATE TYPE memory_kind AS ENUM ('fact', 'preference', 'event', 'skill_note');

COMMENT ON TYPE memory_kind IS 'What a memory records.';

CREATE TABLE memories (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    -- The contact the memory is about (their preference, a fact about them), if any.
    contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE,
    persona_id uuid REFERENCES personas (id) ON DELETE SET NULL,
    kind memory_kind NOT NULL,
    content text NOT NULL,
    -- NULL until the embedder has processed the memory.
    embedding extensions.vector(1536),
    -- Provenance only: the conversation the memory was learned in (deleting it keeps the memory).
    source_conversation_id uuid REFERENCES ai_conversations (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX memories_container_id_kind_idx ON memories (container_id, kind);
CREATE INDEX memories_contact_id_idx ON memories (contact_id);
CREATE INDEX memories_persona_id_idx ON memories (persona_id);
CREATE INDEX memories_source_conversation_id_idx ON memories (source_conversation_id);
CREATE INDEX memories_embedding_idx ON memories USING hnsw (embedding extensions.vector_cosine_ops);

COMMENT ON TABLE memories IS 'Long-term assistant memories with embeddings (vector(1536)), recalled only inside the container they were learned in.';

ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;

CREATE POLICY memories_container ON memories FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE memories TO orbis_app;
