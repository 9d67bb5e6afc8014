//! The database step of the identity consolidation: reads the legacy users
//! from the source and the contacts from the target, runs the matching
//! ([`super::matching`]), creates the new contacts, records every link and
//! resolves the senders of the target's messages, all in one target
//! transaction. Every value read from the databases is checked
//! (`try_get`): a NULL where a name or id was expected is skipped, never a
//! panic.

use std::collections::{BTreeSet, HashMap};

use super::matching::{consolidate, normalize_phone, slack, Contact, LegacyUser, Linked, Method};
use super::{calling_code, ByMethod, IdentitySpec, LinkReport, MessageReport, MessagesSpec};
use crate::cutover::{Error, Result};

/// The link table on the target: one row per legacy user ever linked.
pub const LINK_TABLE: &str = "strata.identity_links";

/// The advisory (transaction) lock serialising runs on one target
/// ("STRATA" and 3; the migrator's and the control plane's keys differ).
const RUN_LOCK: i64 = 0x5354_5241_5441_0003;

/// `schema.table` (or `table`: public) as a quoted name, checked.
fn table_name(key: &str, value: &str) -> Result<(String, String)> {
    let (schema, name) = value.split_once('.').unwrap_or(("public", value));
    for part in [schema, name] {
        check_ident(key, part)?;
    }
    Ok((schema.to_string(), name.to_string()))
}

fn check_ident(key: &str, value: &str) -> Result<()> {
    let mut chars = value.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && value.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "identity: {key} = `{value}` is not a name (letters, digits, _; a table as schema.table)"
        )))
    }
}

fn quoted((schema, name): &(String, String)) -> String {
    format!("{}.{}", crate::pg::quote_ident(schema), crate::pg::quote_ident(name))
}

fn q(ident: &str) -> String {
    crate::pg::quote_ident(ident)
}

fn optional(value: &str) -> Option<&str> {
    let v = value.trim();
    (!v.is_empty()).then_some(v)
}

/// `side` ("source"/"target"): `context`: the server's message.
fn sql_err(side: &str, context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error {
    let context = context.into();
    let side = side.to_string();
    move |e| {
        Error::Pg(crate::pg::Error::Sql {
            target: side,
            context,
            message: crate::pg::describe(&e),
        })
    }
}

/// Column `i` of a row read on `side`, checked: a value of a surprising
/// type is an error naming where it came from, never a panic.
fn val<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r tokio_postgres::Row, i: usize, side: &str, what: &str) -> Result<T> {
    r.try_get(i)
        .map_err(|e| Error::Refused(format!("identity: {side}: {what}: unexpected value in column {}: {e}", i + 1)))
}

/// The table exists and has every column; otherwise an error naming them.
async fn check_columns(client: &tokio_postgres::Client, side: &str, table: &(String, String), columns: &[&str]) -> Result<()> {
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&table.0, &table.1],
        )
        .await
        .map_err(sql_err(side, format!("reading the columns of {}.{}", table.0, table.1)))?;
    if rows.is_empty() {
        return Err(Error::Refused(format!(
            "identity: {side} table {}.{} does not exist",
            table.0, table.1
        )));
    }
    let present: BTreeSet<String> = rows.iter().map(|r| val(r, 0, side, "pg_attribute")).collect::<Result<_>>()?;
    let missing: Vec<&str> = columns.iter().copied().filter(|c| !present.contains(*c)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "identity: {side} table {}.{} has no column {}",
            table.0,
            table.1,
            missing.join(", ")
        )))
    }
}

/// Row-level security would hide rows from a role without SUPERUSER or
/// BYPASSRLS (FORCE makes even the owner subject to it): the step would
/// then see a subset of contacts and create duplicates. Refused.
async fn check_sees_all_rows(client: &tokio_postgres::Client, side: &str, tables: &[&(String, String)]) -> Result<()> {
    let bypass: bool = val(
        &client
            .query_one("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user", &[])
            .await
            .map_err(sql_err(side, "reading the current role"))?,
        0,
        side,
        "pg_roles",
    )?;
    if bypass {
        return Ok(());
    }
    for t in tables {
        let row = client
            .query_opt(
                "SELECT c.relrowsecurity AND (c.relforcerowsecurity OR c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                &[&t.0, &t.1],
            )
            .await
            .map_err(sql_err(side, format!("reading the row-level security of {}.{}", t.0, t.1)))?;
        if row.map(|r| val::<bool>(&r, 0, side, "pg_class")).transpose()? == Some(true) {
            return Err(Error::Refused(format!(
                "identity: {side} table {}.{} has row-level security and the {side} role has neither SUPERUSER nor BYPASSRLS: \
                 the step would see only some rows. Grant it: ALTER ROLE CURRENT_USER BYPASSRLS (as a superuser), or connect \
                 as a role that has it",
                t.0, t.1
            )));
        }
    }
    Ok(())
}

/// The contacts each normalised phone / Slack id belongs to, for messages.
#[derive(Default)]
struct Handles {
    phones: HashMap<String, BTreeSet<String>>,
    slacks: HashMap<String, BTreeSet<String>>,
}

impl Handles {
    fn add(&mut self, contact: &str, phone: Option<&str>, slack_id: Option<&str>, country: &str) {
        if let Some(p) = phone.and_then(|p| normalize_phone(p, country)) {
            self.phones.entry(p).or_default().insert(contact.to_string());
        }
        if let Some(s) = slack_id.and_then(slack) {
            self.slacks.entry(s).or_default().insert(contact.to_string());
        }
    }
}

/// Links the legacy users of `source` to the contacts of `target` and
/// resolves the senders of the target's messages (module docs). Both
/// clients need to see every row: connect as a superuser or a role with
/// BYPASSRLS (the Orbis tables force row-level security, which even their
/// owner is subject to); otherwise the step refuses before writing.
///
/// Everything on the target happens in one transaction, which holds an
/// advisory lock: a concurrent second run waits and then finds the first
/// one's links.
pub async fn run(source: &tokio_postgres::Client, target: &tokio_postgres::Client, spec: &IdentitySpec) -> Result<LinkReport> {
    let country = calling_code(&spec.default_country).ok_or_else(|| {
        Error::Refused(format!(
            "identity: default_country = `{}` is neither an ISO country code we know (CH, DE, AT, FR, IT, GB, US, ...) nor a calling code (41)",
            spec.default_country
        ))
    })?;
    let u = &spec.users;
    let users_table = table_name("users.table", &u.table)?;
    for (key, v) in [
        ("users.id", &u.id),
        ("users.name", &u.name),
        ("users.phone", &u.phone),
        ("users.slack_id", &u.slack_id),
    ] {
        check_ident(key, v)?;
    }
    let c = &spec.contacts;
    let contacts_table = table_name("contacts.table", &c.table)?;
    for (key, v) in [
        ("contacts.id", &c.id),
        ("contacts.name", &c.name),
        ("contacts.phone", &c.phone),
        ("contacts.slack_id", &c.slack_id),
    ] {
        check_ident(key, v)?;
    }
    let identities_table = optional(&c.identities).map(|t| table_name("contacts.identities", t)).transpose()?;
    let m = &spec.messages;
    let messages_table = optional(&m.table).map(|t| table_name("messages.table", t)).transpose()?;
    let mut message_columns = Vec::new();
    if messages_table.is_some() {
        check_ident("messages.contact_id", &m.contact_id)?;
        message_columns.push(m.contact_id.as_str());
        for (key, v) in [
            ("messages.user_id", &m.user_id),
            ("messages.sender_phone", &m.sender_phone),
            ("messages.sender_slack_id", &m.sender_slack_id),
        ] {
            if let Some(v) = optional(v) {
                check_ident(key, v)?;
                message_columns.push(v);
            }
        }
    }

    // The source: every legacy user (a single statement: one snapshot).
    check_columns(source, "source", &users_table, &[&u.id, &u.name, &u.phone, &u.slack_id]).await?;
    check_sees_all_rows(source, "source", &[&users_table]).await?;
    let query = format!(
        // `t.` in ORDER BY: the bare name would sort by the text output column.
        "SELECT t.{id}::text, t.{name}::text, t.{phone}::text, t.{slack}::text FROM {table} AS t ORDER BY t.{id}",
        id = q(&u.id),
        name = q(&u.name),
        phone = q(&u.phone),
        slack = q(&u.slack_id),
        table = quoted(&users_table)
    );
    let what = format!("{}.{}", users_table.0, users_table.1);
    let mut users = Vec::new();
    let mut without_id = 0;
    for r in source
        .query(&query, &[])
        .await
        .map_err(sql_err("source", format!("reading {what}")))?
    {
        // A user without an id cannot be linked: the link table is keyed by it.
        let Some(id) = val::<Option<String>>(&r, 0, "source", &what)? else {
            without_id += 1;
            continue;
        };
        users.push(LegacyUser {
            id,
            name: val(&r, 1, "source", &what)?,
            phone: val(&r, 2, "source", &what)?,
            slack_id: val(&r, 3, "source", &what)?,
        });
    }

    // The target, in one transaction (BEGIN/COMMIT by hand: a shared
    // `&Client` is enough, as the executor holds it).
    target.batch_execute("BEGIN").await.map_err(sql_err("target", "BEGIN"))?;
    let target_spec = TargetSpec {
        country: &country,
        contacts: &contacts_table,
        identities: identities_table.as_ref(),
        messages: messages_table.as_ref(),
        message_columns: &message_columns,
    };
    match link_on_target(target, spec, &target_spec, users).await {
        Ok(mut report) => {
            report.users += without_id;
            report.without_id = without_id;
            target.batch_execute("COMMIT").await.map_err(sql_err("target", "COMMIT"))?;
            Ok(report)
        }
        Err(e) => {
            // The error is what matters; a failed ROLLBACK only means the connection is gone.
            let _ = target.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// The parts of the spec resolved by [`run`].
struct TargetSpec<'a> {
    country: &'a str,
    contacts: &'a (String, String),
    identities: Option<&'a (String, String)>,
    messages: Option<&'a (String, String)>,
    message_columns: &'a [&'a str],
}

async fn link_on_target(
    tx: &tokio_postgres::Client,
    spec: &IdentitySpec,
    t: &TargetSpec<'_>,
    users: Vec<LegacyUser>,
) -> Result<LinkReport> {
    let (country, contacts_table, identities_table, messages_table) = (t.country.to_string(), t.contacts, t.identities, t.messages);
    let c = &spec.contacts;
    let m = &spec.messages;
    let message_columns = t.message_columns;
    check_columns(tx, "target", contacts_table, &[&c.id, &c.name, &c.phone, &c.slack_id]).await?;
    if let Some(t) = &identities_table {
        check_columns(tx, "target", t, &["contact_id", "channel", "identifier"]).await?;
    }
    if let Some(t) = &messages_table {
        check_columns(tx, "target", t, message_columns).await?;
    }
    let mut guarded = vec![contacts_table];
    guarded.extend(identities_table);
    guarded.extend(messages_table);
    check_sees_all_rows(tx, "target", &guarded).await?;
    // One run at a time per target: a concurrent run waits until this one
    // committed, then finds its links (and its link table).
    tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&RUN_LOCK])
        .await
        .map_err(sql_err("target", "taking the identity advisory lock"))?;
    // Created once: a run with nothing new writes nothing, not even DDL.
    let missing: bool = val(
        &tx.query_one(&format!("SELECT to_regclass('{LINK_TABLE}') IS NULL"), &[])
            .await
            .map_err(sql_err("target", format!("looking up {LINK_TABLE}")))?,
        0,
        "target",
        LINK_TABLE,
    )?;
    if missing {
        let ddl = format!(
            "CREATE SCHEMA IF NOT EXISTS strata;
             CREATE TABLE IF NOT EXISTS {LINK_TABLE} (
                 legacy_user_id text PRIMARY KEY,
                 contact_id uuid REFERENCES {contacts} ({id}) ON DELETE SET NULL,
                 method text NOT NULL CHECK (method IN ('phone', 'slack', 'name', 'new-contact')),
                 linked_at timestamptz NOT NULL DEFAULT now()
             );
             COMMENT ON TABLE {LINK_TABLE} IS 'strata identity consolidation: which contact each legacy users row was linked to, and how.';",
            contacts = quoted(contacts_table),
            id = q(&c.id)
        );
        tx.batch_execute(&ddl)
            .await
            .map_err(sql_err("target", format!("creating {LINK_TABLE}")))?;
    }

    let mut links: HashMap<String, (Option<String>, String)> = HashMap::new();
    for r in tx
        .query(&format!("SELECT legacy_user_id, contact_id::text, method FROM {LINK_TABLE}"), &[])
        .await
        .map_err(sql_err("target", format!("reading {LINK_TABLE}")))?
    {
        links.insert(
            val(&r, 0, "target", LINK_TABLE)?,
            (val(&r, 1, "target", LINK_TABLE)?, val(&r, 2, "target", LINK_TABLE)?),
        );
    }
    let created_by_us: BTreeSet<&str> = links
        .values()
        .filter(|(_, method)| method == Method::NewContact.as_str())
        .filter_map(|(c, _)| c.as_deref())
        .collect();

    let query = format!(
        // `t.` in ORDER BY: the bare name would sort by the text output column.
        "SELECT t.{id}::text, t.{name}::text, t.{phone}::text, t.{slack}::text FROM {table} AS t ORDER BY t.{id}",
        id = q(&c.id),
        name = q(&c.name),
        phone = q(&c.phone),
        slack = q(&c.slack_id),
        table = quoted(contacts_table)
    );
    let mut contacts: Vec<Contact> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut handles = Handles::default();
    for r in tx
        .query(&query, &[])
        .await
        .map_err(sql_err("target", format!("reading {}.{}", contacts_table.0, contacts_table.1)))?
    {
        let what = "the contacts";
        // A contact without an id cannot be linked to (a column the file names may be nullable).
        let Some(id) = val::<Option<String>>(&r, 0, "target", what)? else {
            continue;
        };
        let name: Option<String> = val(&r, 1, "target", what)?;
        let phone: Option<String> = val(&r, 2, "target", what)?;
        let slack_id: Option<String> = val(&r, 3, "target", what)?;
        handles.add(&id, phone.as_deref(), slack_id.as_deref(), &country);
        index.insert(id.clone(), contacts.len());
        contacts.push(Contact {
            name: if created_by_us.contains(id.as_str()) { None } else { name },
            id,
            phones: phone.into_iter().collect(),
            slack_ids: slack_id.into_iter().collect(),
        });
    }
    if let Some(t) = &identities_table {
        let query = format!(
            "SELECT contact_id::text, channel::text, identifier::text FROM {} WHERE channel::text IN ('whatsapp', 'sms', 'slack')",
            quoted(t)
        );
        for r in tx
            .query(&query, &[])
            .await
            .map_err(sql_err("target", format!("reading {}.{}", t.0, t.1)))?
        {
            let what = "the contact identities";
            let (id, channel, identifier): (Option<String>, Option<String>, Option<String>) = (
                val(&r, 0, "target", what)?,
                val(&r, 1, "target", what)?,
                val(&r, 2, "target", what)?,
            );
            let (Some(id), Some(channel), Some(identifier)) = (id, channel, identifier) else {
                continue;
            };
            let Some(&i) = index.get(&id) else { continue };
            if channel == "slack" {
                handles.add(&id, None, Some(&identifier), &country);
                contacts[i].slack_ids.push(identifier);
            } else {
                handles.add(&id, Some(&identifier), None, &country);
                contacts[i].phones.push(identifier);
            }
        }
    }

    // Users linked earlier lend their phone and Slack id to their contact, so
    // that a later row of the same person links the same way as in one run.
    let mut report = LinkReport {
        users: users.len(),
        ..LinkReport::default()
    };
    let mut pending = Vec::new();
    for user in users {
        match links.get(&user.id) {
            Some((contact, _)) => {
                report.already_linked += 1;
                if let Some(contact) = contact {
                    handles.add(contact, user.phone.as_deref(), user.slack_id.as_deref(), &country);
                    contacts.push(Contact {
                        id: contact.clone(),
                        name: None,
                        phones: user.phone.into_iter().collect(),
                        slack_ids: user.slack_id.into_iter().collect(),
                    });
                }
            }
            None => pending.push(user),
        }
    }
    let result = consolidate(&pending, &contacts, &country);

    let new_ids: Vec<String> = if result.new_contacts.is_empty() {
        Vec::new()
    } else {
        let n = i32::try_from(result.new_contacts.len())
            .map_err(|_| Error::Refused(format!("identity: {} new contacts in one run", result.new_contacts.len())))?;
        tx.query("SELECT gen_random_uuid()::text FROM generate_series(1, $1)", &[&n])
            .await
            .map_err(sql_err("target", "generating contact ids"))?
            .iter()
            .map(|r| val(r, 0, "target", "gen_random_uuid"))
            .collect::<Result<_>>()?
    };
    if !new_ids.is_empty() {
        let names: Vec<Option<&str>> = result.new_contacts.iter().map(|n| n.name.as_deref()).collect();
        let phones: Vec<Option<&str>> = result.new_contacts.iter().map(|n| n.phone.as_deref()).collect();
        let slacks: Vec<Option<&str>> = result.new_contacts.iter().map(|n| n.slack_id.as_deref()).collect();
        let insert = format!(
            "INSERT INTO {table} ({id}, {name}, {phone}, {slack}) \
             SELECT n.id::uuid, n.name, n.phone, n.slack FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS n(id, name, phone, slack)",
            table = quoted(contacts_table),
            id = q(&c.id),
            name = q(&c.name),
            phone = q(&c.phone),
            slack = q(&c.slack_id)
        );
        tx.execute(&insert, &[&new_ids, &names, &phones, &slacks]).await.map_err(sql_err(
            "target",
            format!("creating contacts in {}.{}", contacts_table.0, contacts_table.1),
        ))?;
        for (id, n) in new_ids.iter().zip(&result.new_contacts) {
            handles.add(id, n.phone.as_deref(), n.slack_id.as_deref(), &country);
        }
    }
    let contact_of = |l: &Linked| match l {
        Linked::Existing(id) => id.clone(),
        Linked::New(i) => new_ids[*i].clone(),
    };
    let link_users: Vec<&str> = result.links.iter().map(|l| l.user_id.as_str()).collect();
    let link_contacts: Vec<String> = result.links.iter().map(|l| contact_of(&l.linked)).collect();
    let link_methods: Vec<&str> = result.links.iter().map(|l| l.method.as_str()).collect();
    if !link_users.is_empty() {
        tx.execute(
            &format!(
                "INSERT INTO {LINK_TABLE} (legacy_user_id, contact_id, method) \
                 SELECT l.user_id, l.contact_id::uuid, l.method FROM unnest($1::text[], $2::text[], $3::text[]) AS l(user_id, contact_id, method)"
            ),
            &[&link_users, &link_contacts, &link_methods],
        )
        .await
        .map_err(sql_err("target", format!("recording links in {LINK_TABLE}")))?;
    }
    // The pending users' handles now point at their contacts too.
    let pending_by_id: HashMap<&str, &LegacyUser> = pending.iter().map(|u| (u.id.as_str(), u)).collect();
    for (l, contact) in result.links.iter().zip(&link_contacts) {
        if let Some(user) = pending_by_id.get(l.user_id.as_str()) {
            handles.add(contact, user.phone.as_deref(), user.slack_id.as_deref(), &country);
        }
    }

    report.by_method = ByMethod {
        phone: result.count(Method::Phone),
        slack: result.count(Method::Slack),
        name: result.count(Method::Name),
        new_contact: result.count(Method::NewContact),
    };
    report.contacts_created = new_ids.len();
    report.ambiguous_names = result.ambiguous_names;
    report.unidentifiable = result.unidentifiable;
    if let Some(t) = &messages_table {
        report.messages = resolve_messages(tx, t, m, &handles, &country).await?;
    }
    Ok(report)
}

/// Fills `contact_id` of the messages whose sender resolves: by the legacy
/// user id through the link table, else by a phone or Slack id that belongs
/// to exactly one contact. Only rows whose `contact_id` is NULL are touched.
async fn resolve_messages(
    tx: &tokio_postgres::Client,
    table: &(String, String),
    spec: &MessagesSpec,
    handles: &Handles,
    country: &str,
) -> Result<MessageReport> {
    let name = format!("{}.{}", table.0, table.1);
    let table_q = quoted(table);
    let contact = q(&spec.contact_id);
    let mut report = MessageReport::default();
    if let Some(user) = optional(&spec.user_id) {
        let sql = format!(
            "UPDATE {table_q} AS m SET {contact} = l.contact_id FROM {LINK_TABLE} AS l \
             WHERE m.{contact} IS NULL AND m.{user} IS NOT NULL AND l.legacy_user_id = m.{user}::text AND l.contact_id IS NOT NULL",
            user = q(user)
        );
        report.resolved_by_user = tx
            .execute(&sql, &[])
            .await
            .map_err(sql_err("target", format!("resolving senders of {name} by {user}")))?;
    }
    // Values of several contacts stay unresolved; counted at the end, once per row.
    let mut ambiguous: Vec<(String, Vec<String>)> = Vec::new();
    for (column, by_phone) in [(optional(&spec.sender_phone), true), (optional(&spec.sender_slack_id), false)] {
        let Some(column) = column else { continue };
        let col = q(column);
        let values: Vec<String> = tx
            .query(
                &format!("SELECT DISTINCT m.{col}::text FROM {table_q} AS m WHERE m.{contact} IS NULL AND m.{col} IS NOT NULL"),
                &[],
            )
            .await
            .map_err(sql_err("target", format!("reading {name}.{column}")))?
            .iter()
            .filter_map(|r| val::<Option<String>>(r, 0, "target", &name).transpose())
            .collect::<Result<_>>()?;
        let (mut raws, mut ids, mut several) = (Vec::new(), Vec::new(), Vec::new());
        for raw in values {
            let found = if by_phone {
                normalize_phone(&raw, country).and_then(|k| handles.phones.get(&k))
            } else {
                slack(&raw).and_then(|k| handles.slacks.get(&k))
            };
            match found.map(|set| set.iter().collect::<Vec<_>>()).as_deref() {
                Some([one]) => {
                    ids.push((*one).clone());
                    raws.push(raw);
                }
                Some(_) => several.push(raw),
                None => {}
            }
        }
        if !raws.is_empty() {
            let n = tx
                .execute(
                    &format!(
                        "UPDATE {table_q} AS m SET {contact} = r.contact_id::uuid FROM unnest($1::text[], $2::text[]) AS r(raw, contact_id) \
                         WHERE m.{contact} IS NULL AND m.{col}::text = r.raw"
                    ),
                    &[&raws, &ids],
                )
                .await
                .map_err(sql_err("target", format!("resolving senders of {name} by {column}")))?;
            if by_phone {
                report.resolved_by_phone = n;
            } else {
                report.resolved_by_slack = n;
            }
        }
        if !several.is_empty() {
            ambiguous.push((col, several));
        }
    }
    if !ambiguous.is_empty() {
        let test: Vec<String> = (1..=ambiguous.len())
            .zip(&ambiguous)
            .map(|(i, (col, _))| format!("m.{col}::text = ANY(${i})"))
            .collect();
        let values: Vec<&Vec<String>> = ambiguous.iter().map(|(_, v)| v).collect();
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values.iter().map(|v| *v as _).collect();
        let n: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM {table_q} AS m WHERE m.{contact} IS NULL AND ({})",
                    test.join(" OR ")
                ),
                &params,
            )
            .await
            .map_err(sql_err("target", format!("counting ambiguous senders of {name}")))
            .and_then(|r| val(&r, 0, "target", &name))?;
        report.ambiguous = n as u64;
    }
    let unresolved: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table_q} WHERE {contact} IS NULL"), &[])
        .await
        .map_err(sql_err("target", format!("counting unresolved senders of {name}")))
        .and_then(|r| val(&r, 0, "target", &name))?;
    report.unresolved = unresolved as u64;
    Ok(report)
}
