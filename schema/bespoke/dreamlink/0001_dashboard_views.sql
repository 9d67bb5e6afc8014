-- Bespoke layer of tenant dreamlink (vertical: agency). A bespoke layer never creates
-- tables: it only adds read-only views over core and agency tables for the dreamlink
-- Dashboard. The views run with the caller's rights (security_invoker), so the row level
-- security of the underlying tables still applies; their names carry the tenant prefix so
-- that a later core or vertical object can never collide with them.

CREATE VIEW dreamlink_pipeline WITH (security_invoker = true) AS
SELECT
    d.id AS deal_id,
    d.title,
    d.stage,
    d.value_amount,
    d.currency,
    d.expected_close_on,
    d.client_contact_id,
    client_contact.display_name AS client_name,
    d.owner_contact_id,
    owner_contact.display_name AS owner_name,
    (SELECT min(m.starts_at) FROM meetings AS m WHERE m.deal_id = d.id AND m.starts_at >= now()) AS next_meeting_at,
    (SELECT count(*) FROM meetings AS m WHERE m.deal_id = d.id) AS meeting_count,
    d.updated_at
FROM deals AS d
JOIN contacts AS client_contact ON client_contact.id = d.client_contact_id
LEFT JOIN contacts AS owner_contact ON owner_contact.id = d.owner_contact_id
WHERE d.stage NOT IN ('won', 'lost');

COMMENT ON VIEW dreamlink_pipeline IS 'dreamlink Dashboard: open deals with client and owner names, next meeting and meeting count.';

GRANT SELECT ON TABLE dreamlink_pipeline TO orbis_app;

CREATE VIEW dreamlink_staff_load WITH (security_invoker = true) AS
SELECT
    c.id AS contact_id,
    c.display_name,
    count(DISTINCT pa.project_id) AS active_projects,
    coalesce(sum(pa.allocation_percent), 0) AS allocation_percent,
    (SELECT count(*) FROM tasks AS t WHERE t.assignee_contact_id = c.id AND t.status <> 'done') AS open_tasks
FROM contacts AS c
JOIN project_assignments AS pa ON pa.contact_id = c.id AND pa.released_on IS NULL
JOIN projects AS p ON p.id = pa.project_id AND p.status = 'active'
GROUP BY c.id, c.display_name;

COMMENT ON VIEW dreamlink_staff_load IS 'dreamlink Dashboard: per staff contact, active projects, summed allocation and open tasks.';

GRANT SELECT ON TABLE dreamlink_staff_load TO orbis_app;
