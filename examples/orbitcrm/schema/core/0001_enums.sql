-- OrbitCRM enums (seed 001, "Enums").

CREATE TYPE user_role AS ENUM ('owner', 'member');

CREATE TYPE contact_status AS ENUM ('lead', 'opportunity', 'client', 'churned');

CREATE TYPE project_status AS ENUM ('lead', 'active', 'on_hold', 'completed', 'archived');

CREATE TYPE invoice_status AS ENUM ('draft', 'sent', 'paid', 'overdue', 'cancelled');

CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'done');

CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'urgent');

CREATE TYPE doc_visibility AS ENUM ('internal', 'shared');

-- ai_messages.role ('user', 'assistant', 'system' in the seed).
CREATE TYPE ai_message_role AS ENUM ('user', 'assistant', 'system');
