//! The matching core of the identity consolidation, on rows in memory: phone
//! numbers to E.164, names compared without case and spacing, and the
//! linking order (phone, Slack id, a name of exactly one contact, else a new
//! contact). Pure: the database step ([`super::link`]) feeds it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

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

pub(super) fn slack(s: &str) -> Option<String> {
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
}
