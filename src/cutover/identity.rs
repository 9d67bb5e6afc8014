//! The Orbis identity consolidation (seed 000): legacy `users` rows are
//! linked to `contacts`, the one canonical person record. A user is linked
//! by phone (normalised to E.164), then by Slack id, then by a name that
//! matches exactly one contact; anything else becomes a new contact, so no
//! one is ever attributed to a wrong person. WhatsApp LIDs are never an
//! identity: a `...@lid` value is ignored, not normalised.
//!
//! This is the matching core, on rows in memory; reading `users` from the
//! source and writing contacts and `contact_id`s on the target belongs to
//! the `move` executor (not implemented yet).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// A row of the legacy `users` table.
#[derive(Clone, Debug)]
pub struct LegacyUser {
    pub id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub slack_id: Option<String>,
}

/// An existing contact.
#[derive(Clone, Debug)]
pub struct Contact {
    pub id: String,
    pub name: Option<String>,
    /// Phones as stored (normalised here).
    pub phones: Vec<String>,
    pub slack_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Phone,
    Slack,
    Name,
    NewContact,
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
#[derive(Clone, Debug, Serialize)]
pub struct NewContact {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub slack_id: Option<String>,
}

/// Counts per method, and the names that matched several contacts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkReport {
    pub by_method: BTreeMap<String, usize>,
    /// (user id, name, the contacts it matched).
    pub ambiguous_names: Vec<(String, String, Vec<String>)>,
}

/// The result of linking every user.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Consolidation {
    pub links: Vec<Link>,
    pub new_contacts: Vec<NewContact>,
    pub report: LinkReport,
}

impl Consolidation {
    /// The link of a user (to resolve a message's sender); `None`: keep
    /// `contact_id = NULL` and the message's `sender_name`.
    pub fn of_user(&self, user_id: &str) -> Option<&Linked> {
        self.links.iter().find(|l| l.user_id == user_id).map(|l| &l.linked)
    }
}

/// E.164 (`+4915112345678`) from what people type: spaces, dashes, dots,
/// brackets, a `00` international prefix, a national `0` prefix (with
/// `default_country` digits, e.g. `49`), a WhatsApp JID
/// (`4915112345678@s.whatsapp.net`). A LID (`...@lid`) or anything that is
/// not 8 to 15 digits is `None`.
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
    } else {
        digits
    };
    (8..=15).contains(&international.len()).then(|| format!("+{international}"))
}

fn normalize_name(name: &str) -> Option<String> {
    let n = name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    (!n.is_empty()).then_some(n)
}

/// Links every user, in order; users matching nobody become new contacts,
/// which later users can match too (two legacy rows of one person become
/// one contact).
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
        if let Some(s) = c.slack_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            by_slack.entry(s.to_string()).or_insert_with(|| Linked::Existing(c.id.clone()));
        }
        if let Some(n) = c.name.as_deref().and_then(normalize_name) {
            by_name.entry(n).or_default().push(c.id.clone());
        }
    }
    let mut out = Consolidation::default();
    for u in users {
        let phone = u.phone.as_deref().and_then(|p| normalize_phone(p, default_country));
        let slack = u.slack_id.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let name = u.name.as_deref().and_then(normalize_name);
        let found = phone
            .as_ref()
            .and_then(|p| by_phone.get(p))
            .map(|l| (l.clone(), Method::Phone))
            .or_else(|| slack.as_ref().and_then(|s| by_slack.get(s)).map(|l| (l.clone(), Method::Slack)))
            .or_else(|| match name.as_ref().and_then(|n| by_name.get(n)) {
                Some(ids) if ids.len() == 1 => Some((Linked::Existing(ids[0].clone()), Method::Name)),
                Some(ids) => {
                    out.report
                        .ambiguous_names
                        .push((u.id.clone(), u.name.clone().unwrap_or_default(), ids.clone()));
                    None
                }
                None => None,
            });
        let (linked, method) = found.unwrap_or_else(|| {
            out.new_contacts.push(NewContact {
                name: u.name.clone(),
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
        let key = serde_json::to_value(method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *out.report.by_method.entry(key).or_default() += 1;
        out.links.push(Link {
            user_id: u.id.clone(),
            linked,
            method,
        });
    }
    out
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
            slack_id: slack.map(Into::into),
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
        assert_eq!(normalize_phone("123456789012345@lid", "49"), None, "a LID is never an identity");
        assert_eq!(normalize_phone("ask reception", "49"), None);
        assert_eq!(normalize_phone("+12", "49"), None);
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
            c.report.ambiguous_names,
            [("u4".to_string(), "Alex Smith".to_string(), vec!["c4".to_string(), "c5".to_string()])]
        );
        assert_eq!(c.report.by_method["phone"], 2);
        assert_eq!(c.report.by_method["new-contact"], 2);
        assert_eq!(c.new_contacts[1].phone.as_deref(), Some("+819012345678"));
        assert_eq!(c.of_user("u9"), None, "an unknown sender stays unresolved");
    }
}
