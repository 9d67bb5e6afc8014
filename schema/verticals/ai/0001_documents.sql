-- AI vertical (Org in a Box, OrbitCRM): retrieval-augmented knowledge. Documents and their
-- chunks are knowledge, so they live inside a container like core knowledge_items: a
-- document uploaded in one chat is never retrieved in another. Tenant-wide documents belong
-- to the workspace container.
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA extensions;

CREATE TYPE doc_visibility AS ENUM ('internal', 'shared');

COMMENT ON TYPE doc_visibility IS 'internal = staff only, shared = may be quoted to the contacts of its container.';

CREATE TYPE embedding_status AS ENUM ('pending', 'processing', 'complete', 'error');

COMMENT ON TYPE embedding_status IS 'Progress of the chunking and embedding of a document.';

CREATE TABLE documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    -- The contact the document is about, if any.
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    uploaded_by_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    name text NOT NULL,
    file_path text NOT NULL,
    mime_type text,
    size_bytes bigint CONSTRAINT documents_size_bytes_positive CHECK (size_bytes >= 0),
    visibility doc_visibility NOT NULL DEFAULT 'internal',
    embedding_status embedding_status NOT NULL DEFAULT 'pending',
    content_summary text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Target of the chunks' (document_id, container_id) foreign key, which keeps every chunk
    -- in its document's container.
    CONSTRAINT documents_id_container_id_key UNIQUE (id, container_id)
);

CREATE INDEX documents_container_id_idx ON documents (container_id);
CREATE INDEX documents_contact_id_idx ON documents (contact_id);
CREATE INDEX documents_uploaded_by_contact_id_idx ON documents (uploaded_by_contact_id);

COMMENT ON TABLE documents IS 'Uploaded documents, scoped to the container they were shared in, with their embedding progress.';

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;

CREATE POLICY documents_container ON documents FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE documents TO orbis_app;

CREATE TABLE document_chunks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id uuid NOT NULL,
    container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    chunk_index integer NOT NULL CONSTRAINT document_chunks_chunk_index_positive CHECK (chunk_index >= 0),
    content text NOT NULL,
    token_count integer,
    -- NULL until the embedder has processed the chunk.
    embedding extensions.vector(1536),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT document_chunks_document_fkey FOREIGN KEY (document_id, container_id)
        REFERENCES documents (id, container_id) ON DELETE CASCADE,
    -- Also the index of the foreign key above (its leading columns).
    CONSTRAINT document_chunks_document_chunk_key UNIQUE (document_id, container_id, chunk_index)
);

CREATE INDEX document_chunks_container_id_idx ON document_chunks (container_id);
CREATE INDEX document_chunks_embedding_idx ON document_chunks USING hnsw (embedding extensions.vector_cosine_ops);

COMMENT ON TABLE document_chunks IS 'Chunks of a document with their embedding (vector(1536)) for similarity search; always in the container of their document.';

ALTER TABLE document_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_chunks FORCE ROW LEVEL SECURITY;

CREATE POLICY document_chunks_container ON document_chunks FOR ALL TO orbis_app
    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE document_chunks TO orbis_app;
