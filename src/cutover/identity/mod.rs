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

pub mod link;
pub mod matching;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use link::{run, LINK_TABLE};
pub use matching::{
    calling_code, consolidate, normalize_phone, AmbiguousName, Consolidation, Contact, LegacyUser, Link, Linked, Method, NewContact,
};

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
    /// Of them, rows whose id is NULL: they cannot be linked (the link table is keyed by the id).
    pub without_id: usize,
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
        if self.without_id > 0 {
            writeln!(f, "users without an id ({}): cannot be linked, left alone", self.without_id)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
            without_id: 0,
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
