//! The example cutover examples/cutovers/nova-leon-to-dreamlink.toml, run
//! end to end on real PostgreSQL logical replication: the nova-leon fixture
//! filled by its generator, an Orbis target (schema/core), and the `move`
//! with its `[identity]` step, from preflight to contract. Afterwards every
//! message is on the target, with the contact its legacy user links to or
//! with contact_id NULL and its sender_name, and no LID reached the target.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{server_major, sql, value, Workspace};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Drops the cutover's subscription, slots and publication, also when the
/// test failed: a leaked slot would hold WAL for the rest of the run.
struct Cleanup {
    source: String,
    target: String,
    name: &'static str,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(e) = common::drop_replication(&self.source, &self.target, self.name) {
            eprintln!("cleanup of cutover {}: {e}", self.name);
        }
    }
}

/// message id → user_id of the source, for the messages whose sender was a known user.
fn senders(source: &str) -> BTreeMap<String, String> {
    sql(source, "SELECT id::text, user_id::text FROM messages WHERE user_id IS NOT NULL")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect()
}

#[test]
fn the_nova_leon_example_moves_with_its_identity_step() {
    // Declared first, so dropped last: the cleanup below runs under it.
    let _serial = common::replication_serial();
    let source = common::database("nova_leon_source");
    let target = common::database("nova_leon_target");
    let cp = common::database("nova_leon_cp");
    let _cleanup = Cleanup {
        source: source.clone(),
        target: target.clone(),
        name: "strata_nova_leon",
    };
    sql(
        &source,
        &std::fs::read_to_string(repo().join("examples/cutovers/nova-leon/schema.sql")).unwrap(),
    );
    common::generate_nova_leon(&source, 200, 2000);

    // The Orbis target: the core layer, and two contacts Orbis already has.
    common::orbis_core(&target);
    sql(
        &target,
        "INSERT INTO contacts (display_name, phone, slack_id) VALUES ('Staff', '+41790000010', NULL), ('Ops', NULL, 'U00000007')",
    );

    // The example file as it is, pointed at this cluster, without its waiting times.
    let example = std::fs::read_to_string(repo().join("examples/cutovers/nova-leon-to-dreamlink.toml")).unwrap();
    let file = example
        .replace("env:NOVA_LEON_DATABASE_URL", &source)
        .replace("env:DREAMLINK_DATABASE_URL", &target)
        .replace("retention = \"14d\"", &format!("retention = \"0s\"\ncontrol_plane = \"{cp}\""))
        .replace("soak = \"30m\"", "soak = \"0s\"");
    assert_ne!(file, example);
    let ws = Workspace::new(&[]);
    ws.write("cutovers/nova-leon.toml", &file);

    let run = ws.strata(&["cutover", "run", "nova-leon"]);
    if server_major() < 15 {
        // No publication column lists before PostgreSQL 15: the preflight refuses.
        run.expect(1);
        assert!(run.stdout.contains("which PostgreSQL 15 introduced"), "{}", run.all());
        return;
    }
    run.expect(0);
    let log = run.all();
    assert!(log.contains("identity: 200 legacy users"), "{log}");

    // Every row arrived, in the new shape, and the window is closed.
    for (src, dst) in [("chats", "containers"), ("messages", "messages"), ("knowledge", "knowledge_items")] {
        assert_eq!(
            value(&source, &format!("SELECT count(*) FROM {src}")),
            value(&target, &format!("SELECT count(*) FROM {dst}")),
            "{src} → {dst}"
        );
    }
    assert_eq!(value(&target, "SELECT count(*) FROM pg_subscription"), "0");
    assert_eq!(value(&source, "SELECT count(*) FROM pg_replication_slots"), "0");
    assert_eq!(value(&source, "SELECT count(*) FROM pg_publication"), "0");
    // Contract dropped the legacy columns the window carried.
    assert_eq!(
        value(
            &target,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'messages' \
             AND column_name IN ('user_id', 'sender_phone', 'sender', 'text', 'sent_ts', 'from_me', 'chat_id', 'lid_jid')"
        ),
        "0"
    );

    // Each message from a known user carries the contact that user links to.
    let links: BTreeMap<String, Option<String>> = sql(&target, "SELECT legacy_user_id, contact_id::text FROM strata.identity_links")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone()))
        .collect();
    assert!(!links.is_empty());
    let contact_of: BTreeMap<String, Option<String>> = sql(&target, "SELECT id::text, contact_id::text FROM messages")
        .into_iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone()))
        .collect();
    let mut by_user = 0;
    for (message, user) in senders(&source) {
        let expected = links.get(&user).cloned().flatten();
        let got = contact_of.get(&message).cloned().flatten();
        if expected.is_some() {
            by_user += 1;
            assert_eq!(got, expected, "message {message} of user {user}");
        }
    }
    assert!(by_user > 0);
    // Unresolved senders are kept, never deleted, with their name.
    assert_eq!(
        value(
            &target,
            "SELECT count(*) FROM messages WHERE contact_id IS NULL AND sender_name IS NULL"
        ),
        "0"
    );
    assert_ne!(value(&target, "SELECT count(*) FROM messages WHERE contact_id IS NULL"), "0");
    // No LID reached the target, in any column of the moved or created rows.
    for table in ["messages", "contacts", "containers", "knowledge_items", "strata.identity_links"] {
        assert_eq!(
            value(&target, &format!("SELECT count(*) FROM {table} t WHERE t::text LIKE '%@lid%'")),
            "0",
            "{table}"
        );
    }
}
