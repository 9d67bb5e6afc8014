//! The Orbis identity consolidation on real databases: a nova-leon source
//! (examples/cutovers/nova-leon/schema.sql) and an Orbis target (schema/core),
//! linked by `strata::cutover::identity::run`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use strata::cutover::identity::{self, AmbiguousName, ByMethod, IdentitySpec, LinkReport, MessageReport};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    repo().join("examples/cutovers/nova-leon")
}

/// A fresh database with the nova-leon fixture schema.
fn nova_leon(name: &str) -> String {
    let conn = database(name);
    sql(&conn, &std::fs::read_to_string(fixture().join("schema.sql")).unwrap());
    conn
}

/// A fresh database with the Orbis core schema, and on messages the legacy
/// columns a `move` carries during its window (the old-named columns its
/// expand adds): user_id and sender_phone.
fn orbis(name: &str) -> String {
    let conn = database(name);
    orbis_core(&conn);
    sql(
        &conn,
        "ALTER TABLE messages ADD COLUMN user_id bigint, ADD COLUMN sender_phone text",
    );
    conn
}

fn spec() -> IdentitySpec {
    let mut spec = IdentitySpec::default();
    spec.messages.sender_phone = "sender_phone".into();
    spec
}

fn run(source: &str, target: &str, spec: &IdentitySpec) -> Result<LinkReport, strata::cutover::Error> {
    rt().block_on(async {
        let s = connect(source).await;
        let t = connect(target).await;
        identity::run(&s, &t, spec).await
    })
}

/// `SELECT` rows as text, to compare whole tables.
fn dump(conn: &str, query: &str) -> Vec<Vec<Option<String>>> {
    sql(conn, query)
}

fn target_state(conn: &str) -> Vec<Vec<Vec<Option<String>>>> {
    vec![
        dump(
            conn,
            "SELECT id, phone, slack_id, display_name, updated_at FROM contacts ORDER BY id",
        ),
        dump(
            conn,
            "SELECT id, contact_id, sender_name, user_id, sender_phone FROM messages ORDER BY id",
        ),
        dump(
            conn,
            "SELECT legacy_user_id, contact_id, method, linked_at FROM strata.identity_links ORDER BY 1",
        ),
    ]
}

/// Rows of every table of the target (public and strata) whose text contains `needle`.
fn rows_containing(conn: &str, needle: &str) -> Vec<String> {
    let tables = sql(
        conn,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = 'r' AND n.nspname IN ('public', 'strata', 'orbis_state')",
    );
    let mut hits = Vec::new();
    for t in tables {
        let t = t[0].clone().unwrap();
        for r in sql(conn, &format!("SELECT t::text FROM {t} AS t WHERE strpos(t::text, '{needle}') > 0")) {
            hits.push(format!("{t}: {}", r[0].clone().unwrap_or_default()));
        }
    }
    hits
}

const CONTAINER: &str = "00000000-0000-0000-0000-0000000000c1";

#[test]
fn links_users_resolves_senders_and_reruns_change_nothing() {
    let source = nova_leon("identity_hand_source");
    let target = orbis("identity_hand_target");
    sql(
        &source,
        "INSERT INTO users (id, name, phone, slack_id, lid_jid) VALUES
           (1, 'Leon Nova', '+41 79 111 22 33', NULL, '100000000000001@lid'),
           (2, 'L. Nova (old row)', '0791112233', NULL, NULL),
           (3, 'Leon', '0041791112233', NULL, '100000000000003@lid'),
           (4, 'M. Dream', NULL, 'U02MIA', NULL),
           (5, 'sam  KIOSK', NULL, NULL, NULL),
           (6, 'Alex Smith', NULL, NULL, '100000000000006@lid'),
           (7, 'Gaku Tanaka', '+81 90 1234 5678', NULL, '100000000000007@lid'),
           (8, 'Gaku', '0081-90-1234-5678', NULL, NULL),
           (9, NULL, NULL, NULL, '100000000000009@lid'),
           (10, 'Yuki', '41795556677@s.whatsapp.net', NULL, NULL),
           (11, 'Ops Bot', NULL, ' U09BOT ', NULL)",
    );
    // Pre-existing contacts (ids fixed to name them in assertions).
    sql(
        &target,
        &format!(
            "INSERT INTO contacts (id, display_name, phone, slack_id) VALUES
               ('00000000-0000-0000-0000-00000000001e', 'Leon Nova', '+41791112233', NULL),
               ('00000000-0000-0000-0000-00000000003a', 'Mia Dream', NULL, 'U02MIA'),
               ('00000000-0000-0000-0000-000000000005', 'Sam Kiosk', NULL, NULL),
               ('00000000-0000-0000-0000-0000000000a1', 'Alex Smith', NULL, NULL),
               ('00000000-0000-0000-0000-0000000000a2', 'alex smith', NULL, NULL),
               ('00000000-0000-0000-0000-0000000000f1', 'Yuki Tanaka', NULL, NULL),
               ('00000000-0000-0000-0000-0000000000ee', 'Other', '+41790000001', NULL);
             INSERT INTO contact_identities (contact_id, channel, identifier) VALUES
               ('00000000-0000-0000-0000-0000000000f1', 'whatsapp', '+41795556677'),
               -- one number on two contacts: a message from it is ambiguous
               ('00000000-0000-0000-0000-000000000005', 'sms', '+41790000002'),
               ('00000000-0000-0000-0000-0000000000a1', 'whatsapp', '+41790000002');
             INSERT INTO containers (id, kind, name) VALUES ('{CONTAINER}', 'group', 'Team');
             INSERT INTO messages (id, container_id, contact_id, sender_name, direction, body, sent_at, user_id, sender_phone) VALUES
               ('00000000-0000-0000-0000-000000000001', '{CONTAINER}', NULL, 'Leon', 'inbound', 'a', now(), 1, NULL),
               ('00000000-0000-0000-0000-000000000002', '{CONTAINER}', NULL, 'Gaku', 'inbound', 'b', now(), 8, NULL),
               ('00000000-0000-0000-0000-000000000003', '{CONTAINER}', NULL, 'Alex', 'inbound', 'c', now(), 6, NULL),
               ('00000000-0000-0000-0000-000000000004', '{CONTAINER}', NULL, 'Other', 'inbound', 'd', now(), NULL, '+41 79 000 00 01'),
               ('00000000-0000-0000-0000-000000000005', '{CONTAINER}', NULL, 'Yuki', 'inbound', 'e', now(), NULL, '0795556677'),
               ('00000000-0000-0000-0000-000000000006', '{CONTAINER}', NULL, 'Stranger', 'inbound', 'f', now(), NULL, '+41 78 999 99 99'),
               ('00000000-0000-0000-0000-000000000007', '{CONTAINER}', NULL, '~ Someone', 'inbound', 'g', now(), 9, NULL),
               ('00000000-0000-0000-0000-000000000008', '{CONTAINER}', NULL, 'Ghost', 'inbound', 'h', now(), 999, NULL),
               ('00000000-0000-0000-0000-000000000009', '{CONTAINER}', NULL, 'Shared phone', 'inbound', 'i', now(), NULL, '0790000002'),
               ('00000000-0000-0000-0000-000000000010', '{CONTAINER}', '00000000-0000-0000-0000-000000000005', 'Sam', 'inbound', 'j', now(), 1, NULL)"
        ),
    );

    let report = run(&source, &target, &spec()).unwrap();
    let links: BTreeMap<String, (String, String)> = sql(&target, "SELECT legacy_user_id, contact_id, method FROM strata.identity_links")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), (r[1].clone().unwrap(), r[2].clone().unwrap())))
        .collect();
    let contact = |user: &str| links[user].0.clone();
    let method = |user: &str| links[user].1.clone();
    let leon = "00000000-0000-0000-0000-00000000001e";
    // Phones in mixed formats reach the existing contact; a JID reaches one
    // through contact_identities.
    for u in ["1", "2", "3"] {
        assert_eq!((contact(u).as_str(), method(u).as_str()), (leon, "phone"), "user {u}");
    }
    assert_eq!(contact("10"), "00000000-0000-0000-0000-0000000000f1");
    assert_eq!(method("10"), "phone");
    assert_eq!(
        (contact("4").as_str(), method("4").as_str()),
        ("00000000-0000-0000-0000-00000000003a", "slack")
    );
    assert_eq!(
        (contact("5").as_str(), method("5").as_str()),
        ("00000000-0000-0000-0000-000000000005", "name")
    );
    // An ambiguous name links to neither candidate: a new contact.
    assert_eq!(method("6"), "new-contact");
    assert!(!contact("6").starts_with("00000000-0000-0000-0000-0000000000a"), "{}", contact("6"));
    // The second row of Gaku links by phone to the contact the first one created.
    assert_eq!(method("7"), "new-contact");
    assert_eq!((contact("8"), method("8")), (contact("7"), "phone".to_string()));
    assert_eq!(method("11"), "new-contact");
    assert!(!links.contains_key("9"), "a user with only a LID is not linked");
    assert_eq!(links.len(), 10);

    assert_eq!(
        sql(
            &target,
            &format!(
                "SELECT display_name, phone, slack_id FROM contacts WHERE id IN ('{}', '{}', '{}') ORDER BY display_name",
                contact("6"),
                contact("7"),
                contact("11")
            )
        ),
        [
            [Some("Alex Smith".to_string()), None, None],
            [Some("Gaku Tanaka".to_string()), Some("+819012345678".to_string()), None],
            [Some("Ops Bot".to_string()), None, Some("U09BOT".to_string())],
        ]
    );
    assert_eq!(value(&target, "SELECT count(*) FROM contacts"), "10");

    // Message senders.
    let senders: BTreeMap<String, (Option<String>, String)> =
        sql(&target, "SELECT right(id::text, 2), contact_id, sender_name FROM messages")
            .into_iter()
            .map(|r| (r[0].clone().unwrap(), (r[1].clone(), r[2].clone().unwrap())))
            .collect();
    assert_eq!(senders["01"].0.as_deref(), Some(leon));
    assert_eq!(senders["02"].0, Some(contact("7")));
    assert_eq!(senders["03"].0, Some(contact("6")));
    assert_eq!(senders["04"].0.as_deref(), Some("00000000-0000-0000-0000-0000000000ee"));
    assert_eq!(senders["05"].0.as_deref(), Some("00000000-0000-0000-0000-0000000000f1"));
    for (m, name) in [("06", "Stranger"), ("07", "~ Someone"), ("08", "Ghost"), ("09", "Shared phone")] {
        assert_eq!(
            senders[m],
            (None, name.to_string()),
            "message {m} keeps contact_id NULL and its sender_name"
        );
    }
    assert_eq!(
        senders["10"].0.as_deref(),
        Some("00000000-0000-0000-0000-000000000005"),
        "a message with a contact is never relinked"
    );
    assert_eq!(senders.len(), 10, "nothing deleted");

    assert_eq!(
        report,
        LinkReport {
            users: 11,
            without_id: 0,
            already_linked: 0,
            by_method: ByMethod {
                phone: 5,
                slack: 1,
                name: 1,
                new_contact: 3,
            },
            contacts_created: 3,
            ambiguous_names: vec![AmbiguousName {
                user_id: "6".into(),
                name: "Alex Smith".into(),
                candidates: vec![
                    "00000000-0000-0000-0000-0000000000a1".into(),
                    "00000000-0000-0000-0000-0000000000a2".into()
                ],
            }],
            unidentifiable: vec!["9".into()],
            messages: MessageReport {
                resolved_by_user: 3,
                resolved_by_phone: 2,
                resolved_by_slack: 0,
                ambiguous: 1,
                unresolved: 4,
            },
        }
    );
    let text = report.to_string();
    assert!(text.contains("user 6 \"Alex Smith\" matches contacts"), "{text}");

    // No LID reached the target.
    assert_eq!(rows_containing(&target, "@lid"), Vec::<String>::new());
    assert_eq!(rows_containing(&target, "10000000000000"), Vec::<String>::new());

    // A second run changes nothing.
    let before = target_state(&target);
    let again = run(&source, &target, &spec()).unwrap();
    assert_eq!(target_state(&target), before);
    assert_eq!(again.already_linked, 10);
    assert_eq!(again.linked(), 0);
    assert_eq!(again.contacts_created, 0);
    assert_eq!(again.messages.resolved(), 0);
    assert_eq!(again.messages.unresolved, 4);
    assert_eq!(again.unidentifiable, ["9"]);

    // Before the writers flip: a user and a message written to nova-leon
    // meanwhile (as replication would carry it) are linked and resolved.
    sql(
        &source,
        "INSERT INTO users (id, name, phone) VALUES (12, 'Gaku T.', '+81 (90) 1234-5678')",
    );
    sql(
        &target,
        &format!(
            "INSERT INTO messages (container_id, sender_name, direction, body, sent_at, user_id) \
             VALUES ('{CONTAINER}', 'Gaku T.', 'inbound', 'k', now(), 12)"
        ),
    );
    let third = run(&source, &target, &spec()).unwrap();
    assert_eq!((third.already_linked, third.by_method.phone, third.linked()), (10, 1, 1));
    assert_eq!(third.messages.resolved_by_user, 1);
    assert_eq!(contact_of_user(&target, "12"), contact("7"));
}

fn contact_of_user(target: &str, user: &str) -> String {
    value(
        target,
        &format!("SELECT contact_id FROM strata.identity_links WHERE legacy_user_id = '{user}'"),
    )
}

#[test]
fn refuses_a_role_that_row_level_security_would_blind() {
    let source = nova_leon("identity_rls_source");
    let target = orbis("identity_rls_target");
    sql(
        &target,
        "DO $$ BEGIN CREATE ROLE identity_probe LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
         GRANT USAGE, CREATE ON SCHEMA public TO identity_probe;
         GRANT ALL ON ALL TABLES IN SCHEMA public TO identity_probe;
         ALTER TABLE contacts OWNER TO identity_probe",
    );
    sql(&target, "INSERT INTO contacts (display_name) VALUES ('Hidden')");
    // key=value strings take the last user=; a URL (STRATA_TEST_PG) gets a query parameter.
    let probe = if target.contains("://") {
        format!("{target}{}user=identity_probe", if target.contains('?') { "&" } else { "?" })
    } else {
        format!("{target} user=identity_probe")
    };
    let e = run(&source, &probe, &spec()).unwrap_err().to_string();
    assert!(
        e.contains("target table public.contacts has row-level security") && e.contains("neither SUPERUSER nor BYPASSRLS"),
        "{e}"
    );
    assert!(!has_table(&target, "strata.identity_links"), "nothing written");
}

#[test]
fn bad_spec_names_what_is_wrong() {
    let source = nova_leon("identity_spec_source");
    let target = orbis("identity_spec_target");
    let mut s = spec();
    s.default_country = "Narnia".into();
    let e = run(&source, &target, &s).unwrap_err().to_string();
    assert!(e.contains("default_country = `Narnia`"), "{e}");
    let mut s = spec();
    s.users.phone = "mobile".into();
    let e = run(&source, &target, &s).unwrap_err().to_string();
    assert!(e.contains("source table public.users has no column mobile"), "{e}");
    let mut s = spec();
    s.messages.sender_slack_id = "slack_sender".into();
    let e = run(&source, &target, &s).unwrap_err().to_string();
    assert!(e.contains("target table public.messages has no column slack_sender"), "{e}");
    let mut s = spec();
    s.users.table = "users; DROP TABLE users".into();
    let e = run(&source, &target, &s).unwrap_err().to_string();
    assert!(e.contains("users.table = `users; DROP TABLE users` is not a name"), "{e}");
}

/// Copies chats → containers and messages onto the target, as the move's
/// initial copy would (legacy user_id and sender_phone kept, lid_jid not).
fn initial_copy(source: &str, target: &str) {
    rt().block_on(async {
        let s = connect(source).await;
        let t = connect(target).await;
        let chats = s.query("SELECT id::text, jid, name, is_group FROM chats", &[]).await.unwrap();
        let ids: Vec<String> = chats.iter().map(|r| r.get(0)).collect();
        let jids: Vec<String> = chats.iter().map(|r| r.get(1)).collect();
        let names: Vec<String> = chats.iter().map(|r| r.get(2)).collect();
        let groups: Vec<bool> = chats.iter().map(|r| r.get(3)).collect();
        t.execute(
            "INSERT INTO containers (id, kind, name, channel, channel_ref) \
             SELECT c.id::uuid, CASE WHEN c.g THEN 'group' ELSE 'direct' END::container_kind, c.name, 'whatsapp', c.jid \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS c(id, jid, name, g)",
            &[&ids, &jids, &names, &groups],
        )
        .await
        .unwrap();
        let msgs = s
            .query(
                "SELECT id::text, chat_id::text, user_id, sender, sender_phone, text, sent_ts::text FROM messages",
                &[],
            )
            .await
            .unwrap();
        let col = |i: usize| -> Vec<Option<String>> { msgs.iter().map(|r| r.get(i)).collect() };
        let users: Vec<Option<i64>> = msgs.iter().map(|r| r.get(2)).collect();
        t.execute(
            "INSERT INTO messages (id, container_id, user_id, sender_name, sender_phone, body, sent_at, direction) \
             SELECT m.id::uuid, m.chat::uuid, m.u, m.sender, m.phone, m.body, m.ts::timestamp AT TIME ZONE 'UTC', 'inbound' \
             FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[]) \
                  AS m(id, chat, u, sender, phone, body, ts)",
            &[&col(0), &col(1), &users, &col(3), &col(4), &col(5), &col(6)],
        )
        .await
        .unwrap();
    });
}

#[test]
fn generated_nova_leon_consolidates() {
    let source = nova_leon("identity_gen_source");
    common::generate_nova_leon(&source, 300, 3000);
    assert_eq!(value(&source, "SELECT count(*) FROM users"), "300");
    assert_eq!(value(&source, "SELECT count(*) FROM messages"), "3000");
    // The mix the generator promises.
    assert_eq!(value(&source, "SELECT count(*) FROM users WHERE phone LIKE '+41 79 %'"), "90");
    assert_eq!(value(&source, "SELECT count(*) FROM users WHERE phone LIKE '0041%'"), "24");
    assert_eq!(
        value(&source, "SELECT count(*) FROM users WHERE phone IS NULL AND slack_id IS NOT NULL"),
        "30"
    );
    assert_ne!(
        value(&source, "SELECT count(*) - count(DISTINCT name) FROM users"),
        "0",
        "users share names"
    );
    assert_eq!(
        value(
            &source,
            "SELECT count(*) FROM messages WHERE user_id IS NULL AND sender_phone IS NULL AND lid_jid LIKE '%@lid'"
        ),
        "300"
    );

    let target = orbis("identity_gen_target");
    // Contacts Orbis already has: user 10's phone, user 7's Slack id, one
    // contact named as some users are, two named as others are.
    sql(
        &target,
        "INSERT INTO contacts (display_name, phone, slack_id) VALUES \
         ('Staff', '+41790000010', NULL), ('Ops', NULL, 'U00000007'), \
         ('Mia Meier', NULL, NULL), ('Marco Graf', NULL, NULL), ('marco graf', NULL, NULL)",
    );
    initial_copy(&source, &target);
    let report = run(&source, &target, &spec()).unwrap();
    println!("{report}");

    // Every user is linked or reported unidentifiable; every message is kept,
    // with a contact or with its sender_name as nova-leon had it.
    assert_eq!(report.linked() + report.unidentifiable.len(), 300);
    assert_eq!(report.unidentifiable, ["25", "75", "125", "175", "225", "275"], "in users.id order");
    // The 29 second rows of a phone (19 reaches Staff through user 10's phone), user 10; user 7's Slack id.
    assert_eq!((report.by_method.phone, report.by_method.slack), (30, 1));
    let mia = value(&target, "SELECT id FROM contacts WHERE display_name = 'Mia Meier'");
    let by_name = sql(&target, "SELECT contact_id::text FROM strata.identity_links WHERE method = 'name'");
    assert!(!by_name.is_empty() && by_name.len() == report.by_method.name);
    assert!(
        by_name.iter().all(|r| r[0].as_deref() == Some(mia.as_str())),
        "only Mia Meier is unambiguous"
    );
    assert!(!report.ambiguous_names.is_empty());
    assert!(
        report
            .ambiguous_names
            .iter()
            .all(|a| a.name == "Marco Graf" && a.candidates.len() == 2),
        "{:?}",
        report.ambiguous_names
    );
    assert_eq!(value(&target, "SELECT count(*) FROM messages"), "3000");
    assert_eq!(report.messages.resolved() + report.messages.unresolved, 3000);
    assert_eq!(
        value(&target, "SELECT count(*) FROM messages WHERE contact_id IS NULL")
            .parse::<u64>()
            .unwrap(),
        report.messages.unresolved
    );
    let kept: BTreeMap<String, String> = sql(&source, "SELECT id::text, sender FROM messages")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    for r in sql(&target, "SELECT id::text, sender_name FROM messages WHERE contact_id IS NULL") {
        assert_eq!(r[1].as_ref(), kept.get(r[0].as_ref().unwrap()), "message {:?}", r[0]);
    }
    // Messages from phones of nobody and LID-only senders stay unresolved;
    // messages of linked users carry their user's contact.
    let lid_ids: BTreeSet<String> = sql(
        &source,
        "SELECT id::text FROM messages WHERE user_id IS NULL AND sender_phone IS NULL",
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    let unresolved: BTreeSet<String> = sql(&target, "SELECT id::text FROM messages WHERE contact_id IS NULL")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert!(lid_ids.is_subset(&unresolved));
    assert_eq!(
        value(
            &target,
            "SELECT count(*) FROM messages m JOIN strata.identity_links l ON l.legacy_user_id = m.user_id::text \
             WHERE m.contact_id IS DISTINCT FROM l.contact_id"
        ),
        "0"
    );
    // Users with the same phone (any format) share one contact.
    let users = sql(&source, "SELECT id::text, phone FROM users WHERE phone IS NOT NULL");
    let links: BTreeMap<String, String> = sql(&target, "SELECT legacy_user_id, contact_id::text FROM strata.identity_links")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    let mut by_phone: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in &users {
        let phone = identity::normalize_phone(u[1].as_deref().unwrap(), "41").unwrap();
        by_phone.entry(phone).or_default().insert(links[u[0].as_ref().unwrap()].clone());
    }
    assert!(by_phone.len() < users.len(), "the generator repeats phones");
    assert!(by_phone.values().all(|c| c.len() == 1), "{by_phone:?}");
    assert_eq!(rows_containing(&target, "@lid"), Vec::<String>::new());

    let before = target_state(&target);
    let again = run(&source, &target, &spec()).unwrap();
    assert_eq!((again.linked(), again.contacts_created, again.messages.resolved()), (0, 0, 0));
    assert_eq!(target_state(&target), before);
}

/// The example move plan: its `[identity]` section is an `IdentitySpec` (the
/// defaults plus sender_phone, as its comment says), the rest is a valid
/// cutover file for today's plan.rs; the reshape example is valid as it is.
#[test]
fn example_cutover_files_parse() {
    let path = repo().join("examples/cutovers/nova-leon-to-dreamlink.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    let identity: IdentitySpec = doc.remove("identity").expect("an [identity] section").try_into().unwrap();
    assert_eq!(identity, spec());
    let plan = strata::cutover::plan::parse(&path, &toml::to_string(&doc).unwrap()).unwrap();
    let messages = plan.tables.iter().find(|t| t.name == "messages").unwrap();
    assert_eq!(messages.drop, ["lid_jid"]);
    let reshape = strata::cutover::plan::load(&repo().join("examples/cutovers/reshape-message-body.toml")).unwrap();
    assert_eq!(reshape.tables[0].changes[0].replaces.as_deref(), Some("body"));
}

/// Two runs started together on a fresh target: one waits for the other
/// (advisory lock), so every user is linked once and no contact is doubled.
#[test]
fn concurrent_runs_link_each_user_once() {
    let source = nova_leon("identity_race_source");
    let target = orbis("identity_race_target");
    sql(
        &source,
        "INSERT INTO users (id, name, phone, slack_id) \
         SELECT i, 'User ' || i, '+41 79 100 ' || lpad(i::text, 4, '0'), NULL FROM generate_series(1, 200) AS i",
    );
    let (a, b) = rt().block_on(async {
        let (s1, t1, s2, t2) = (
            connect(&source).await,
            connect(&target).await,
            connect(&source).await,
            connect(&target).await,
        );
        let spec = spec();
        tokio::join!(identity::run(&s1, &t1, &spec), identity::run(&s2, &t2, &spec))
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut created = [a.contacts_created, b.contacts_created];
    created.sort();
    assert_eq!(created, [0, 200], "one run did the work, the other found it done");
    assert_eq!(a.already_linked + b.already_linked, 200);
    assert_eq!(value(&target, "SELECT count(*) FROM contacts"), "200");
    assert_eq!(value(&target, "SELECT count(*) FROM strata.identity_links"), "200");
}

/// Every column the `[identity]` section names may hold NULLs in someone's
/// database: the step skips what it cannot use and never panics.
#[test]
fn nulls_in_every_configured_column_are_skipped_not_fatal() {
    let source = database("identity_nulls_source");
    let target = database("identity_nulls_target");
    sql(
        &source,
        "CREATE TABLE legacy_people (pid bigint, full_name text, mobile text, slack text);
         INSERT INTO legacy_people VALUES
             (NULL, 'No Id', '+41 79 000 00 01', 'U0NOID'),
             (1, NULL, NULL, NULL),
             (2, 'Ann Null', NULL, NULL),
             (3, NULL, '0790000003', NULL),
             (4, NULL, NULL, 'U00000004');",
    );
    sql(
        &target,
        "CREATE TABLE people (cid uuid UNIQUE, nick text, tel text, slack text);
         INSERT INTO people VALUES (NULL, 'Nobody', '+41790000003', NULL),
                                   ('00000000-0000-0000-0000-000000000001', NULL, NULL, NULL),
                                   ('00000000-0000-0000-0000-000000000002', 'Ann Null', NULL, NULL);
         CREATE TABLE handles (contact_id uuid, channel text, identifier text);
         INSERT INTO handles VALUES (NULL, 'slack', 'U00000004'),
                                    ('00000000-0000-0000-0000-000000000001', 'slack', NULL),
                                    ('00000000-0000-0000-0000-000000000001', NULL, 'U00000004'),
                                    ('00000000-0000-0000-0000-000000000001', 'whatsapp', NULL);
         CREATE TABLE notes (id serial PRIMARY KEY, contact uuid, legacy_user text, phone text, slack text);
         INSERT INTO notes (contact, legacy_user, phone, slack) VALUES
             (NULL, NULL, NULL, NULL), (NULL, '2', NULL, NULL), (NULL, NULL, '+41790000003', NULL), (NULL, NULL, NULL, 'U00000004');",
    );
    let mut s = IdentitySpec::default();
    s.users.table = "public.legacy_people".into();
    s.users.id = "pid".into();
    s.users.name = "full_name".into();
    s.users.phone = "mobile".into();
    s.users.slack_id = "slack".into();
    s.contacts.table = "public.people".into();
    s.contacts.id = "cid".into();
    s.contacts.name = "nick".into();
    s.contacts.phone = "tel".into();
    s.contacts.slack_id = "slack".into();
    s.contacts.identities = "public.handles".into();
    s.messages.table = "public.notes".into();
    s.messages.contact_id = "contact".into();
    s.messages.user_id = "legacy_user".into();
    s.messages.sender_phone = "phone".into();
    s.messages.sender_slack_id = "slack".into();
    let report = run(&source, &target, &s).unwrap_or_else(|e| panic!("{e}"));
    // The user without an id cannot be linked (the link table is keyed by it); the one with nothing is unidentifiable.
    assert_eq!(report.users, 5);
    assert_eq!(report.without_id, 1, "{report}");
    assert_eq!(report.unidentifiable, ["1"]);
    // Ann links by the name of the one contact called so; user 3's phone belongs to a contact without an id: unusable,
    // so 3 becomes a new contact; 4's Slack id is only on a handle without a contact: a new contact too.
    assert_eq!(contact_of_user(&target, "2"), "00000000-0000-0000-0000-000000000002");
    assert_eq!(report.by_method.name, 1, "{report}");
    assert_eq!(report.by_method.new_contact, 2, "{report}");
    assert_eq!(
        value(&target, "SELECT count(*) FROM notes WHERE contact IS NOT NULL"),
        "3",
        "{report}"
    );
}
