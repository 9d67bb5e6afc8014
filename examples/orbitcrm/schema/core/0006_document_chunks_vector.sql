-- Phase 2: RAG vector embeddings. Needs pgvector: kept in its own migration so that a
-- server without the extension stops here with a clear preflight error.

CREATE SCHEMA IF NOT EXISTS extensions;

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;

CREATE TABLE document_chunks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    document_id uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index integer NOT NULL,
    content text NOT NULL,
    embedding extensions.vector(1536),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, chunk_index)
);

COMMENT ON TABLE document_chunks IS 'RAG vector embeddings (OpenAI, 1536 dimensions)';

CREATE INDEX document_chunks_org_id_idx ON document_chunks (org_id);
CREATE INDEX document_chunks_embedding_idx ON document_chunks USING hnsw (embedding extensions.vector_cosine_ops);

ALTER TABLE document_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_chunks FORCE ROW LEVEL SECURITY;

CREATE POLICY document_chunks_tenant ON document_chunks FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid)
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE document_chunks TO orbitcrm_app;
