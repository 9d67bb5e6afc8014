-- Fills a nova-leon fixture database (schema.sql) with realistic, messy legacy data.
--
--   psql -d nova_leon -v ON_ERROR_STOP=1 -v users=1000 -v messages=100000 -f generate.sql
--
-- Defaults: users=1000, messages=10000. Deterministic (no random()): the same
-- variables give the same rows. Appends; run it on an empty fixture. Products
-- are computed in bigint, so millions of messages (and users) work.
--
-- What it produces, by users.id modulo 10 (i):
--   i=0,1,2  phone "+41 79 000 01 23"          i=3,4  national "0790000123"
--   i=5      "0041790000123"                  i=6    a JID "41790000123@s.whatsapp.net"
--   i=7      no phone, only a Slack id        i=8    no phone, no Slack id: a name only
--   i=9      the phone of user id-9 in another format (the same person twice)
--   Slack ids on i=0,4,7; a WhatsApp LID (lid_jid) on every third user; names drawn
--   from a small pool, so many users share a name; every 50th user (id=25 mod 50) has
--   nothing but a LID.
-- Messages, by messages number modulo 10 (j):
--   j<7  from a known users row (user_id)
--   j=7  no user_id, the sender's phone as "+41..." (the phone of a users row, unless that row has none)
--   j=8  no user_id, a phone that belongs to nobody
--   j=9  a LID-only sender: no user_id, no phone, lid_jid set

\if :{?users}
\else
\set users 1000
\endif
\if :{?messages}
\else
\set messages 10000
\endif

BEGIN;

-- The seven digits after the Swiss mobile prefix 79, per user number.
CREATE TEMPORARY TABLE gen_people ON COMMIT DROP AS
SELECT i,
       '79' || lpad((i - CASE WHEN i % 10 = 9 AND i > 9 THEN 9 ELSE 0 END)::text, 7, '0') AS d,
       (ARRAY['Anna', 'Luca', 'Mia', 'Noah', 'Lea', 'Elias', 'Sofia', 'Leon', 'Lara', 'Gaku',
              'Nina', 'Jonas', 'Emma', 'David', 'Alex', 'Sara', 'Marco', 'Julia', 'Yuki', 'Tim'])[(1 + (i::bigint * 7) % 20)::int]
       || ' ' ||
       (ARRAY['Müller', 'Meier', 'Schmid', 'Keller', 'Weber', 'Huber', 'Nova', 'Dream', 'Rossi', 'Smith',
              'Tanaka', 'Frei', 'Baumann', 'Graf', 'Brunner'])[(1 + (i::bigint * 11) % 15)::int] AS name
FROM generate_series(1, :users) AS i;

INSERT INTO users (id, name, phone, slack_id, lid_jid)
SELECT i,
       CASE WHEN i % 50 = 25 THEN NULL WHEN i % 10 = 9 THEN initcap(lower(name)) ELSE name END,
       CASE
           WHEN i % 50 = 25 THEN NULL
           WHEN i % 10 IN (0, 1, 2) THEN '+41 ' || substr(d, 1, 2) || ' ' || substr(d, 3, 3) || ' ' || substr(d, 6, 2) || ' ' || substr(d, 8, 2)
           WHEN i % 10 IN (3, 4) THEN '0' || d
           WHEN i % 10 = 5 THEN '0041' || d
           WHEN i % 10 = 6 THEN '41' || d || '@s.whatsapp.net'
           WHEN i % 10 IN (7, 8) THEN NULL
           ELSE '+41' || d
       END,
       CASE WHEN i % 10 IN (0, 4, 7) AND i % 50 <> 25 THEN 'U' || upper(lpad(to_hex(i), 8, '0')) END,
       CASE WHEN i % 3 = 0 OR i % 50 = 25 THEN (100000000000000 + i)::text || '@lid' END
FROM gen_people;

SELECT setval(pg_get_serial_sequence('users', 'id'), greatest(:users, 1));

INSERT INTO chats (jid, name, is_group)
SELECT '1203630' || lpad(c::text, 11, '0') || '@g.us', 'Chat ' || c, c % 4 <> 0
FROM generate_series(1, greatest(:users / 20, 1)) AS c;

CREATE TEMPORARY TABLE gen_chats ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY jid) AS n, id FROM chats;

-- Temporary tables have no statistics until analysed: without them the joins below nest loops.
ANALYZE gen_people;
ANALYZE gen_chats;
ANALYZE users;

INSERT INTO messages (chat_id, user_id, sender, sender_phone, from_me, text, sent_ts, lid_jid)
SELECT ch.id,
       CASE WHEN j % 10 < 7 THEN u.id END,
       CASE
           WHEN j % 10 = 8 THEN 'Stranger ' || (j % 97)
           WHEN j % 10 = 9 THEN '~ ' || coalesce(u.name, 'unknown')
           ELSE coalesce(u.name, 'unknown')
       END,
       CASE
           WHEN j % 10 = 7 THEN '+41' || p.d
           WHEN j % 10 = 8 THEN '+41 78 9' || lpad((j % 1000)::text, 3, '0') || ' 00 00'
       END,
       false,
       'message ' || j,
       timestamp '2025-01-01 08:00' + j * interval '37 seconds',
       CASE WHEN j % 10 = 9 THEN (200000000000000 + j)::text || '@lid' WHEN u.lid_jid IS NOT NULL AND j % 10 < 7 THEN u.lid_jid END
FROM generate_series(1, :messages) AS j
JOIN gen_chats ch ON ch.n = 1 + j % (SELECT count(*) FROM gen_chats)
-- A known user with a phone-bearing profile for j=7; any user otherwise.
JOIN users u ON u.id = 1 + ((j::bigint * 7919) % greatest(:users, 1))
JOIN gen_people p ON p.i = u.id;

INSERT INTO knowledge (chat_id, kind, title, body)
SELECT ch.id, (ARRAY['fact', 'decision', 'note', 'link'])[1 + k % 4], 'Item ' || k, 'What chat ' || ch.n || ' learned, #' || k
FROM generate_series(1, greatest(:users / 10, 1)) AS k
JOIN gen_chats ch ON ch.n = 1 + k % (SELECT count(*) FROM gen_chats);

INSERT INTO deals (title, client_name, owner_user_id, stage, amount)
SELECT 'Deal ' || k, 'Client ' || (k % 37), 1 + (k::bigint * 13) % greatest(:users, 1),
       (ARRAY['lead', 'qualified', 'proposal', 'won', 'lost'])[1 + k % 5], 1000 + k * 250
FROM generate_series(1, greatest(:users / 20, 1)) AS k;

INSERT INTO meetings (title, deal_id, organizer_user_id, starts_ts, ends_ts)
SELECT 'Meeting about ' || d.title, d.id, d.owner_user_id,
       timestamp '2025-02-01 09:00' + row_number() OVER (ORDER BY d.title) * interval '1 day',
       timestamp '2025-02-01 10:00' + row_number() OVER (ORDER BY d.title) * interval '1 day'
FROM deals d;

COMMIT;
