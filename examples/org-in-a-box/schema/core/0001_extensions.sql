-- Extensions the migrator enables on every boot (SQL_FRAGMENTS.enableExtensions).
-- pgvector is enabled by 0004, with the tables that need it.

CREATE SCHEMA IF NOT EXISTS extensions;

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions;
