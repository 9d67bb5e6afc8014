-- Phase 2: uploaded documents. Internal documents are the owners'; shared ones the whole
-- organization's.

CREATE TABLE documents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects (id) ON DELETE SET NULL,
    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    name text NOT NULL,
    file_path text NOT NULL,
    file_type text,
    size_bytes bigint,
    visibility doc_visibility NOT NULL DEFAULT 'internal',
    embedding_status text NOT NULL DEFAULT 'pending' CHECK (embedding_status IN ('pending', 'processing', 'complete', 'error')),
    content_summary text,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE documents IS 'Uploaded documents with RAG metadata';

CREATE INDEX documents_org_id_idx ON documents (org_id);
CREATE INDEX documents_project_id_idx ON documents (project_id);
CREATE INDEX documents_contact_id_idx ON documents (contact_id);

ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;

CREATE POLICY documents_visible ON documents FOR ALL TO orbitcrm_app
    USING (org_id = (select current_setting('app.org_id', true))::uuid AND (visibility = 'shared' OR (select is_org_owner())))
    WITH CHECK (org_id = (select current_setting('app.org_id', true))::uuid);

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE documents TO orbitcrm_app;
