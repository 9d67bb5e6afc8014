//! The Orbis identity consolidation (seed 000, SPEC §5): legacy `users` rows
//! are linked to `contacts`, the one canonical person record. A user is
//! linked by phone (normalised to E.164), then by Slack id, then by a name
//! that matches exactly one contact; anything else becomes a new contact, so
//! no one is ever attributed to a wrong person. WhatsApp LIDs are never an
//! identity: a `...@lid` value is ignored, not normalised, and no LID column
//! is ever read.
//!
//! Two halves:
//! - the matching core ([`consolidate`]), pure and on rows in memory;
//! - the database step ([`run`]): reads `users` from the source and
//!   `contacts` from the target, creates the new contacts, records every
//!   link in `strata.identity_links` on the target and fills
//!   `messages.contact_id` where the legacy sender resolves, all in one
//!   target transaction, then returns a [`LinkReport`]. It is meant to run
//!   as a step of a `move` (after the initial copy and again before the
//!   writers flip) and is idempotent: a user already in the link table is
//!   never relinked, and a message that has a `contact_id` is never touched.
//!
//! The step: a cutover file's `[identity]` table is an [`IdentitySpec`]
//! (every key has a default); the `move` executor runs [`run`] as the step
//! `identity` after the initial copy and again inside `flip-writers` once
//! replication delivered its last rows (while the target's messages still
//! carry the legacy `user_id` / sender columns, i.e. before contract), with
//! source and target connected as superusers, and logs the report.
//!
//! Why the link table decides, not a fresh match: between two runs the
//! target gains contacts (those this step created, those the application
//! wrote), so matching everyone again could move a user to another contact.
//! Contacts created by this step never take part in name matching (only
//! pre-existing contacts do), in the run that creates them and in later
//! runs alike, so one run and two runs link the same way.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// A row of the legacy `users` table.
#[derive(Clone, Debug)]
pub struct LegacyUser {
    pub id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub slack_id: Option<String>,
}

/// A contact the users are matched against.
#[derive(Clone, Debug, Default)]
pub struct Contact {
    pub id: String,
    /// `None`: the contact is not matched by name (e.g. created by this step).
    pub name: Option<String>,
    /// Phones as stored (normalised here).
    pub phones: Vec<String>,
    pub slack_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Phone,
    Slack,
    Name,
    NewContact,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Phone => "phone",
            Method::Slack => "slack",
            Method::Name => "name",
            Method::NewContact => "new-contact",
        }
    }
}

/// Where a user went: an existing contact (by id) or the n-th new contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linked {
    Existing(String),
    New(usize),
}

#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub user_id: String,
    pub linked: Linked,
    pub method: Method,
}

/// A contact to create for users that matched none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewContact {
    pub name: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub slack_id: Option<String>,
}

/// A user whose name matched several contacts: not linked by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AmbiguousName {
    pub user_id: String,
    pub name: String,
    /// The contacts the name matched.
    pub candidates: Vec<String>,
}

/// The result of linking every user.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Consolidation {
    pub links: Vec<Link>,
    pub new_contacts: Vec<NewContact>,
    pub ambiguous_names: Vec<AmbiguousName>,
    /// Users with no name, no usable phone and no Slack id: nothing to make a
    /// contact from (`contacts_identifiable`), so they stay unlinked.
    pub unidentifiable: Vec<String>,
}

impl Consolidation {
    /// The link of a user (to resolve a message's sender); `None`: keep
    /// `contact_id = NULL` and the message's `sender_name`.
    pub fn of_user(&self, user_id: &str) -> Option<&Linked> {
        self.links.iter().find(|l| l.user_id == user_id).map(|l| &l.linked)
    }

    pub fn count(&self, method: Method) -> usize {
        self.links.iter().filter(|l| l.method == method).count()
    }
}

/// The calling code of an ISO 3166 country (`CH` → `41`), or digits as
/// given (`41`, `+41`). `None` for anything else.
pub fn calling_code(country: &str) -> Option<String> {
    let c = country.trim().trim_start_matches('+');
    if !c.is_empty() && c.len() <= 3 && c.chars().all(|ch| ch.is_ascii_digit()) && !c.starts_with('0') {
        return Some(c.to_string());
    }
    let code = match c.to_ascii_uppercase().as_str() {
        "CH" => "41",
        "LI" => "423",
        "DE" => "49",
        "AT" => "43",
        "FR" => "33",
        "IT" => "39",
        "ES" => "34",
        "PT" => "351",
        "NL" => "31",
        "BE" => "32",
        "LU" => "352",
        "DK" => "45",
        "SE" => "46",
        "NO" => "47",
        "FI" => "358",
        "PL" => "48",
        "CZ" => "420",
        "IE" => "353",
        "GB" | "UK" => "44",
        "US" | "CA" => "1",
        "AU" => "61",
        "NZ" => "64",
        "JP" => "81",
        "SG" => "65",
        "IN" => "91",
        "BR" => "55",
        "MX" => "52",
        "ZA" => "27",
        "AE" => "971",
        "IL" => "972",
        _ => return None,
    };
    Some(code.to_string())
}

/// E.164 (`+41791234567`) from what people type: spaces, dashes, dots,
/// brackets, a `00` international prefix, a national `0` prefix (with the
/// `default_country` calling code, e.g. `41`), a WhatsApp JID
/// (`41791234567@s.whatsapp.net`), bare digits with the country code (11
/// or more). A LID (`...@lid`), bare digits too short to tell national from
/// international (`791234567`), a country code
/// starting with 0, or anything that is not 7 to 15 digits (the
/// `contacts_phone_e164` CHECK of Orbis) is `None`.
pub fn normalize_phone(raw: &str, default_country: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = match raw.split_once('@') {
        Some((number, "s.whatsapp.net" | "c.us")) => number,
        Some(_) => return None,
        None => raw,
    };
    let plus = raw.starts_with('+');
    if raw.chars().any(|c| !(c.is_ascii_digit() || " -.()/+".contains(c))) || raw.matches('+').count() > usize::from(plus) {
        return None;
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("{default_country}{rest}")
    } else if digits.len() >= 11 {
        // A JID or a number typed with its country code but no `+`.
        digits
    } else {
        // `79 123 45 67`: national without its 0, or international? Guessing
        // could attribute someone to a stranger.
        return None;
    };
    ((7..=15).contains(&international.len()) && !international.starts_with('0')).then(|| format!("+{international}"))
}

/// The key names are compared by: lowercase, whitespace collapsed.
fn normalize_name(name: &str) -> Option<String> {
    let n = name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    (!n.is_empty()).then_some(n)
}

/// A name as a contact shows it: trimmed, whitespace collapsed, case kept.
fn display_name(name: &str) -> Option<String> {
    let n = name.split_whitespace().collect::<Vec<_>>().join(" ");
    (!n.is_empty()).then_some(n)
}

fn slack(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Links every user, in order; users matching nobody become new contacts,
/// which later users can match by phone or Slack id (two legacy rows of one
/// person become one contact), never by name.
pub fn consolidate(users: &[LegacyUser], contacts: &[Contact], default_country: &str) -> Consolidation {
    let mut by_phone: HashMap<String, Linked> = HashMap::new();
    let mut by_slack: HashMap<String, Linked> = HashMap::new();
    let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
    for c in contacts {
        for p in &c.phones {
            if let Some(p) = normalize_phone(p, default_country) {
                by_phone.entry(p).or_insert_with(|| Linked::Existing(c.id.clone()));
            }
        }
        for s in c.slack_ids.iter().filter_map(|s| slack(s)) {
            by_slack.entry(s).or_insert_with(|| Linked::Existing(c.id.clone()));
        }
        if let Some(n) = c.name.as_deref().and_then(normalize_name) {
            let ids = by_name.entry(n).or_default();
            if !ids.contains(&c.id) {
                ids.push(c.id.clone());
            }
        }
    }
    let mut out = Consolidation::default();
    for u in users {
        let phone = u.phone.as_deref().and_then(|p| normalize_phone(p, default_country));
        let slack = u.slack_id.as_deref().and_then(slack);
        let name = u.name.as_deref().and_then(normalize_name);
        if phone.is_none() && slack.is_none() && name.is_none() {
            out.unidentifiable.push(u.id.clone());
            continue;
        }
        let found = phone
            .as_ref()
            .and_then(|p| by_phone.get(p))
            .map(|l| (l.clone(), Method::Phone))
            .or_else(|| slack.as_ref().and_then(|s| by_slack.get(s)).map(|l| (l.clone(), Method::Slack)))
            .or_else(|| match name.as_ref().and_then(|n| by_name.get(n)) {
                Some(ids) if ids.len() == 1 => Some((Linked::Existing(ids[0].clone()), Method::Name)),
                Some(ids) => {
                    out.ambiguous_names.push(AmbiguousName {
                        user_id: u.id.clone(),
                        name: u.name.clone().unwrap_or_default(),
                        candidates: ids.clone(),
                    });
                    None
                }
                None => None,
            });
        let (linked, method) = found.unwrap_or_else(|| {
            out.new_contacts.push(NewContact {
                name: u.name.as_deref().and_then(display_name),
                phone: phone.clone(),
                slack_id: slack.clone(),
            });
            (Linked::New(out.new_contacts.len() - 1), Method::NewContact)
        });
        // What this user brings makes later rows of the same person match.
        if let Some(p) = phone {
            by_phone.entry(p).or_insert_with(|| linked.clone());
        }
        if let Some(s) = slack {
            by_slack.entry(s).or_insert_with(|| linked.clone());
        }
        out.links.push(Link {
            user_id: u.id.clone(),
            linked,
            method,
        });
    }
    out
}

/// The `[identity]` section of a `move` cutover file: where the legacy users
/// are on the source, and the contacts and messages on the target. Every
/// key has a default fitting nova-leon → Orbis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySpec {
    /// The country of national numbers (`079 123 45 67`): an ISO code (`CH`)
    /// or a calling code (`41`). Default `CH`.
    pub default_country: String,
    pub users: UsersSpec,
    pub contacts: ContactsSpec,
    pub messages: MessagesSpec,
}

/// The legacy `users` table on the source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsersSpec {
    /// `schema.table` or `table` (default `public.users`).
    pub table: String,
    pub id: String,
    pub name: String,
    pub phone: String,
    pub slack_id: String,
}

/// The contacts on the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactsSpec {
    /// Default `public.contacts`; its `id` is a uuid.
    pub table: String,
    pub id: String,
    pub name: String,
    pub phone: String,
    pub slack_id: String,
    /// Further handles (`contact_id`, `channel`, `identifier`): whatsapp/sms
    /// identifiers count as phones, slack ones as Slack ids. `""`: none.
    pub identities: String,
}

/// The messages on the target whose senders are resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagesSpec {
    /// Default `public.messages`; `""`: resolve no message.
    pub table: String,
    /// The column set when the sender resolves (default `contact_id`).
    pub contact_id: String,
    /// The legacy `users.id` of the sender, as carried onto the target
    /// during the move (default `user_id`); `""`: none.
    pub user_id: String,
    /// The sender's phone (or WhatsApp JID), tried when `user_id` does not
    /// resolve; `""` (default): none.
    pub sender_phone: String,
    /// The sender's Slack id, tried next; `""` (default): none.
    pub sender_slack_id: String,
}

impl Default for IdentitySpec {
    fn default() -> Self {
        IdentitySpec {
            default_country: "CH".into(),
            users: UsersSpec::default(),
            contacts: ContactsSpec::default(),
            messages: MessagesSpec::default(),
        }
    }
}

impl Default for UsersSpec {
    fn default() -> Self {
        UsersSpec {
            table: "public.users".into(),
            id: "id".into(),
            name: "name".into(),
            phone: "phone".into(),
            slack_id: "slack_id".into(),
        }
    }
}

impl Default for ContactsSpec {
    fn default() -> Self {
        ContactsSpec {
            table: "public.contacts".into(),
            id: "id".into(),
            name: "display_name".into(),
            phone: "phone".into(),
            slack_id: "slack_id".into(),
            identities: "public.contact_identities".into(),
        }
    }
}

impl Default for MessagesSpec {
    fn default() -> Self {
        MessagesSpec {
            table: "public.messages".into(),
            contact_id: "contact_id".into(),
            user_id: "user_id".into(),
            sender_phone: String::new(),
            sender_slack_id: String::new(),
        }
    }
}

/// How many users went which way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ByMethod {
    pub phone: usize,
    pub slack: usize,
    pub name: usize,
    pub new_contact: usize,
}

/// What happened to the messages of the target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    /// Rows given a `contact_id` by this run, through the sender's user id.
    pub resolved_by_user: u64,
    pub resolved_by_phone: u64,
    pub resolved_by_slack: u64,
    /// Rows left NULL because their phone or Slack id belongs to several contacts.
    pub ambiguous: u64,
    /// Rows with `contact_id` NULL after this run (they keep `sender_name`).
    pub unresolved: u64,
}

impl MessageReport {
    pub fn resolved(&self) -> u64 {
        self.resolved_by_user + self.resolved_by_phone + self.resolved_by_slack
    }
}

/// The link report of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkReport {
    /// Rows of the legacy users table.
    pub users: usize,
    /// Users linked by an earlier run (left as they are).
    pub already_linked: usize,
    /// Users linked by this run, per method.
    pub by_method: ByMethod,
    /// Contacts this run created.
    pub contacts_created: usize,
    pub ambiguous_names: Vec<AmbiguousName>,
    /// Users with no name, phone or Slack id (left unlinked; tried again next run).
    pub unidentifiable: Vec<String>,
    pub messages: MessageReport,
}

impl LinkReport {
    /// Users this run linked.
    pub fn linked(&self) -> usize {
        let m = &self.by_method;
        m.phone + m.slack + m.name + m.new_contact
    }
}

/// At most this many ambiguous names or unidentifiable users are listed in
/// the text report (JSON has them all).
const LISTED: usize = 20;

impl fmt::Display for LinkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.by_method;
        writeln!(
            f,
            "identity: {} legacy users, {} already linked, {} linked now: {} by phone, {} by Slack id, {} by name, {} as new contacts ({} contacts created)",
            self.users,
            self.already_linked,
            self.linked(),
            m.phone,
            m.slack,
            m.name,
            m.new_contact,
            self.contacts_created
        )?;
        if !self.ambiguous_names.is_empty() {
            writeln!(f, "ambiguous names ({}), each became a new contact:", self.ambiguous_names.len())?;
            for a in self.ambiguous_names.iter().take(LISTED) {
                writeln!(f, "  user {} {:?} matches contacts {}", a.user_id, a.name, a.candidates.join(", "))?;
            }
            if self.ambiguous_names.len() > LISTED {
                writeln!(f, "  ... and {} more", self.ambiguous_names.len() - LISTED)?;
            }
        }
        if !self.unidentifiable.is_empty() {
            let shown: Vec<&str> = self.unidentifiable.iter().take(LISTED).map(String::as_str).collect();
            let more = self.unidentifiable.len().saturating_sub(LISTED);
            writeln!(
                f,
                "unidentifiable users ({}: no name, phone or Slack id; left unlinked): {}{}",
                self.unidentifiable.len(),
                shown.join(", "),
                if more > 0 { format!(" ... and {more} more") } else { String::new() }
            )?;
        }
        let g = &self.messages;
        write!(
            f,
            "messages: {} resolved now ({} by user, {} by phone, {} by Slack id), {} keep contact_id NULL and their sender_name",
            g.resolved(),
            g.resolved_by_user,
            g.resolved_by_phone,
            g.resolved_by_slack,
            g.unresolved
        )?;
        if g.ambiguous > 0 {
            write!(f, " ({} of them: phone or Slack id of several contacts)", g.ambiguous)?;
        }
        Ok(())
    }
}

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
    let present: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
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
    let bypass: bool = client
        .query_one("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user", &[])
        .await
        .map_err(sql_err(side, "reading the current role"))?
        .get(0);
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
        if row.is_some_and(|r| r.get::<_, bool>(0)) {
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
    let users: Vec<LegacyUser> = source
        .query(&query, &[])
        .await
        .map_err(sql_err("source", format!("reading {}.{}", users_table.0, users_table.1)))?
        .iter()
        .filter_map(|r| {
            Some(LegacyUser {
                id: r.get::<_, Option<String>>(0)?,
                name: r.get(1),
                phone: r.get(2),
                slack_id: r.get(3),
            })
        })
        .collect();

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
        Ok(report) => {
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
    let missing: bool = tx
        .query_one(&format!("SELECT to_regclass('{LINK_TABLE}') IS NULL"), &[])
        .await
        .map_err(sql_err("target", format!("looking up {LINK_TABLE}")))?
        .get(0);
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
        links.insert(r.get(0), (r.get(1), r.get(2)));
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
        let id: String = r.get(0);
        let phone: Option<String> = r.get(2);
        let slack_id: Option<String> = r.get(3);
        handles.add(&id, phone.as_deref(), slack_id.as_deref(), &country);
        index.insert(id.clone(), contacts.len());
        contacts.push(Contact {
            name: if created_by_us.contains(id.as_str()) { None } else { r.get(1) },
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
            let (id, channel, identifier): (String, String, String) = (r.get(0), r.get(1), r.get(2));
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
            .map(|r| r.get(0))
            .collect()
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
            .map(|r| r.get(0))
            .collect();
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
            .map_err(sql_err("target", format!("counting ambiguous senders of {name}")))?
            .get(0);
        report.ambiguous = n as u64;
    }
    let unresolved: i64 = tx
        .query_one(&format!("SELECT count(*) FROM {table_q} WHERE {contact} IS NULL"), &[])
        .await
        .map_err(sql_err("target", format!("counting unresolved senders of {name}")))?
        .get(0);
    report.unresolved = unresolved as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, name: &str, phone: Option<&str>, slack: Option<&str>) -> LegacyUser {
        LegacyUser {
            id: id.into(),
            name: Some(name.into()),
            phone: phone.map(Into::into),
            slack_id: slack.map(Into::into),
        }
    }

    fn contact(id: &str, name: &str, phones: &[&str], slack: Option<&str>) -> Contact {
        Contact {
            id: id.into(),
            name: Some(name.into()),
            phones: phones.iter().map(|p| p.to_string()).collect(),
            slack_ids: slack.into_iter().map(Into::into).collect(),
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(normalize_phone("+49 151 1234-5678", "49").as_deref(), Some("+4915112345678"));
        assert_eq!(normalize_phone("0151 12345678", "49").as_deref(), Some("+4915112345678"));
        assert_eq!(normalize_phone("0049 (151) 12345678", "49").as_deref(), Some("+4915112345678"));
        assert_eq!(
            normalize_phone("4915112345678@s.whatsapp.net", "49").as_deref(),
            Some("+4915112345678")
        );
        assert_eq!(normalize_phone("+41 79 123 45 67", "41").as_deref(), Some("+41791234567"));
        assert_eq!(normalize_phone("0791234567", "41").as_deref(), Some("+41791234567"));
        assert_eq!(normalize_phone("0041791234567", "41").as_deref(), Some("+41791234567"));
        assert_eq!(normalize_phone("123456789012345@lid", "49"), None, "a LID is never an identity");
        assert_eq!(normalize_phone("ask reception", "49"), None);
        assert_eq!(normalize_phone("+12", "49"), None);
        assert_eq!(normalize_phone("+0791234567", "41"), None, "no country code starts with 0");
        assert_eq!(normalize_phone("41791234567", "41").as_deref(), Some("+41791234567"));
        assert_eq!(normalize_phone("791234567", "41"), None, "national or international: not guessed");
    }

    #[test]
    fn countries_become_calling_codes() {
        assert_eq!(calling_code("CH").as_deref(), Some("41"));
        assert_eq!(calling_code("de").as_deref(), Some("49"));
        assert_eq!(calling_code("+41").as_deref(), Some("41"));
        assert_eq!(calling_code("XX"), None);
        assert_eq!(calling_code("041"), None);
    }

    #[test]
    fn links_by_phone_then_slack_then_unambiguous_name() {
        let contacts = [
            contact("c1", "Leon Nova", &["+49 151 1111111"], None),
            contact("c2", "Mia Dream", &[], Some("U02MIA")),
            contact("c3", "Sam Kiosk", &[], None),
            contact("c4", "Alex Smith", &[], None),
            contact("c5", "alex  smith", &[], None),
        ];
        let users = [
            user("u1", "Leon", Some("01511111111"), None),
            user("u2", "M. Dream", None, Some("U02MIA")),
            user("u3", "sam kiosk", None, None),
            user("u4", "Alex Smith", None, None),
            user("u5", "Gaku", Some("+81 90 1234 5678"), None),
            user("u6", "Gaku (old phone row)", Some("0081-90-1234-5678"), None),
            user("u7", "  ", Some("123456789012345@lid"), Some(" ")),
        ];
        let c = consolidate(&users, &contacts, "49");
        let got: Vec<(&str, &Linked, Method)> = c.links.iter().map(|l| (l.user_id.as_str(), &l.linked, l.method)).collect();
        assert_eq!(
            got,
            [
                ("u1", &Linked::Existing("c1".into()), Method::Phone),
                ("u2", &Linked::Existing("c2".into()), Method::Slack),
                ("u3", &Linked::Existing("c3".into()), Method::Name),
                ("u4", &Linked::New(0), Method::NewContact),
                ("u5", &Linked::New(1), Method::NewContact),
                ("u6", &Linked::New(1), Method::Phone),
            ]
        );
        assert_eq!(
            c.ambiguous_names,
            [AmbiguousName {
                user_id: "u4".into(),
                name: "Alex Smith".into(),
                candidates: vec!["c4".into(), "c5".into()],
            }]
        );
        assert_eq!(c.unidentifiable, ["u7"], "a LID and blanks make no contact");
        assert_eq!(c.count(Method::Phone), 2);
        assert_eq!(c.count(Method::NewContact), 2);
        assert_eq!(
            c.new_contacts[1],
            NewContact {
                name: Some("Gaku".into()),
                phone: Some("+819012345678".into()),
                slack_id: None,
            }
        );
        assert_eq!(c.of_user("u9"), None, "an unknown sender stays unresolved");
    }

    #[test]
    fn new_contacts_are_never_matched_by_name() {
        // Two legacy "Kim"s without any other handle: two people for all we know.
        let users = [user("u1", "Kim", None, None), user("u2", "Kim", None, None)];
        let c = consolidate(&users, &[], "41");
        assert_eq!(c.new_contacts.len(), 2);
        assert!(c.ambiguous_names.is_empty());
    }

    #[test]
    fn spec_defaults_and_unknown_keys() {
        let spec: IdentitySpec = toml::from_str("default_country = \"DE\"\n[messages]\nsender_phone = \"sender_phone\"\n").unwrap();
        assert_eq!(spec.default_country, "DE");
        assert_eq!(spec.users.table, "public.users");
        assert_eq!(spec.contacts.name, "display_name");
        assert_eq!(spec.messages.user_id, "user_id");
        assert_eq!(spec.messages.sender_phone, "sender_phone");
        let e = toml::from_str::<IdentitySpec>("[users]\nlid = \"lid_jid\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `lid`"), "{e}");
    }

    #[test]
    fn report_text_names_methods_and_ambiguous_names() {
        let report = LinkReport {
            users: 5,
            already_linked: 1,
            by_method: ByMethod {
                phone: 1,
                slack: 1,
                name: 0,
                new_contact: 2,
            },
            contacts_created: 2,
            ambiguous_names: vec![AmbiguousName {
                user_id: "4".into(),
                name: "Alex Smith".into(),
                candidates: vec!["c4".into(), "c5".into()],
            }],
            unidentifiable: vec![],
            messages: MessageReport {
                resolved_by_user: 7,
                resolved_by_phone: 2,
                resolved_by_slack: 0,
                ambiguous: 0,
                unresolved: 3,
            },
        };
        let text = report.to_string();
        assert!(
            text.starts_with(
                "identity: 5 legacy users, 1 already linked, 4 linked now: 1 by phone, 1 by Slack id, 0 by name, 2 as new contacts"
            ),
            "{text}"
        );
        assert!(text.contains("user 4 \"Alex Smith\" matches contacts c4, c5"), "{text}");
        assert!(
            text.contains("messages: 9 resolved now (7 by user, 2 by phone, 0 by Slack id), 3 keep contact_id NULL"),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["by_method"]["new-contact"], 2);
        assert_eq!(json["ambiguous_names"][0]["candidates"][1], "c5");
    }
}
