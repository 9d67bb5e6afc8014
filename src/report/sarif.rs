//! SARIF 2.1.0 (`--format sarif`), the format GitHub code scanning uploads.
//!
//! One run whose `tool.driver.rules` describes every rule of the table, not
//! only those that fired, so that code scanning can show the documentation of
//! any alert. Columns are Unicode code points (`columnKind`), like ours, and a
//! SARIF region's `endColumn` is exclusive where ours is inclusive.
//!
//! `partialFingerprints.primaryLocationLineHash` lets code scanning follow an
//! alert when lines move (see [`super::fingerprint`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use super::{CheckReport, Diagnostic, Severity};
use crate::rules::RuleMeta;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/strata-sql/strata";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool<'a>,
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    information_uri: &'static str,
    version: &'static str,
    rules: Vec<ReportingDescriptor<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportingDescriptor<'a> {
    id: &'a str,
    name: String,
    short_description: Message<'a>,
    full_description: Message<'a>,
    help_uri: String,
    help: MultiformatMessage,
    default_configuration: Configuration,
    properties: Properties,
}

#[derive(Serialize)]
struct Message<'a> {
    text: Cow<'a, str>,
}

impl<'a> Message<'a> {
    fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Message { text: text.into() }
    }
}

#[derive(Serialize)]
struct MultiformatMessage {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct Properties {
    tags: [&'static str; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: &'static str,
    message: Message<'a>,
    locations: [Location; 1],
    partial_fingerprints: Fingerprints,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: SarifRegion,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    start_line: u32,
    start_column: u32,
    end_line: u32,
    /// Exclusive, unlike our inclusive end.
    end_column: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Fingerprints {
    primary_location_line_hash: String,
}

/// `docs_url`: where docs/rules.md is published (each rule's `helpUri` is
/// its section there).
pub fn render(report: &CheckReport, rules: &[&RuleMeta], docs_url: &str, w: &mut dyn Write) -> io::Result<()> {
    let index: HashMap<&str, usize> = rules.iter().enumerate().map(|(i, rule)| (rule.id, i)).collect();
    let results = report
        .diagnostics
        .iter()
        .zip(super::fingerprint::fingerprints(report))
        .map(|(d, fingerprint)| result(d, index.get(d.rule).copied(), fingerprint))
        .collect();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "strata",
                    information_uri: INFORMATION_URI,
                    version: env!("CARGO_PKG_VERSION"),
                    rules: rules.iter().map(|rule| descriptor(rule, docs_url)).collect(),
                },
            },
            column_kind: "unicodeCodePoints",
            results,
        }],
    };
    super::write_json(&log, w)
}

fn descriptor<'a>(rule: &'a RuleMeta, docs_url: &str) -> ReportingDescriptor<'a> {
    ReportingDescriptor {
        id: rule.id,
        name: upper_camel_case(rule.id),
        short_description: Message::new(rule.summary),
        full_description: Message::new(rule.what_it_does()),
        help_uri: crate::rules::docs::rule_url(docs_url, rule.id),
        help: MultiformatMessage {
            text: rule.how_to_fix(),
            markdown: rule.doc_text(),
        },
        default_configuration: Configuration {
            level: level(rule.default_severity),
        },
        properties: Properties {
            tags: [rule.group.as_str()],
        },
    }
}

fn result(d: &Diagnostic, rule_index: Option<usize>, fingerprint: String) -> SarifResult<'_> {
    let region = d.region.normalized();
    SarifResult {
        rule_id: d.rule,
        rule_index,
        level: level(d.severity),
        message: Message::new(d.message.as_str()),
        locations: [Location {
            physical_location: PhysicalLocation {
                artifact_location: artifact_location(&d.file.path),
                region: SarifRegion {
                    start_line: region.start.line,
                    start_column: region.start.col,
                    end_line: region.end.line,
                    end_column: region.end.col + 1,
                },
            },
        }],
        partial_fingerprints: Fingerprints {
            primary_location_line_hash: fingerprint,
        },
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Off => "none",
    }
}

/// `rls-missing` → `RlsMissing`.
fn upper_camel_case(id: &str) -> String {
    let mut name = String::with_capacity(id.len());
    for word in id.split(['-', '_']) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

/// A relative path becomes a relative URI reference against `%SRCROOT%` (the
/// checkout, for code scanning); an absolute one a `file:` URI.
fn artifact_location(path: &str) -> ArtifactLocation {
    let mut path = path.replace('\\', "/");
    while let Some(rest) = path.strip_prefix("./") {
        path = rest.to_string();
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        // A Windows drive: the colon is part of the path, not a scheme.
        let (drive, rest) = path.split_at(2);
        ArtifactLocation {
            uri: format!("file:///{drive}{}", percent_encode(rest)),
            uri_base_id: None,
        }
    } else if path.starts_with('/') {
        ArtifactLocation {
            uri: format!("file://{}", percent_encode(&path)),
            uri_base_id: None,
        }
    } else {
        ArtifactLocation {
            uri: percent_encode(&path),
            uri_base_id: Some("%SRCROOT%"),
        }
    }
}

/// Percent-encodes every byte but the URI unreserved characters and `/`.
fn percent_encode(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::report::fixture;

    fn rendered(report: &CheckReport) -> String {
        let mut out = Vec::new();
        render(report, &fixture::rules(), "https://docs.example/rules.md", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixture_log() {
        let out = rendered(&fixture::report());
        // The snapshot should not change with every release.
        let out = out.replace(
            &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
            "\"version\": \"[version]\"",
        );
        insta::assert_snapshot!(out);
    }

    #[test]
    fn results_have_what_github_requires() {
        let report = fixture::report();
        let log: Value = serde_json::from_str(&rendered(&report)).unwrap();
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SCHEMA);
        let run = &log["runs"][0];
        assert_eq!(run["columnKind"], "unicodeCodePoints");
        assert_eq!(run["tool"]["driver"]["name"], "strata");
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), fixture::RULES.len());
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), report.diagnostics.len());
        for (result, d) in results.iter().zip(&report.diagnostics) {
            assert_eq!(result["ruleId"], d.rule);
            assert!(result["message"]["text"].is_string());
            let location = &result["locations"][0]["physicalLocation"];
            assert!(location["artifactLocation"]["uri"].is_string());
            let region = &location["region"];
            assert!(region["startLine"].as_u64().unwrap() >= 1);
            assert_eq!(region["endColumn"].as_u64().unwrap(), u64::from(d.region.end.col) + 1);
            match result.get("ruleIndex") {
                Some(i) => assert_eq!(rules[i.as_u64().unwrap() as usize]["id"], d.rule),
                None => assert!(fixture::RULES.iter().all(|r| r.id != d.rule)),
            }
            assert!(result["partialFingerprints"]["primaryLocationLineHash"].is_string());
        }
        assert!(results.iter().any(|r| r.get("ruleIndex").is_none()));
    }

    #[test]
    fn rule_descriptors() {
        let rule = descriptor(&fixture::RULES[0], "https://docs.example/rules.md");
        assert_eq!(rule.name, "RlsMissing");
        assert_eq!(rule.full_description.text, "Checks the fixture.");
        assert_eq!(rule.help.text, "Do what the help says.");
        assert_eq!(rule.help_uri, "https://docs.example/rules.md#rls-missing");
        assert_eq!(rule.properties.tags, ["governance"]);
        assert_eq!(descriptor(&fixture::RULES[5], "").default_configuration.level, "none");
    }

    /// The real rules' documents are doc comments (a space before every
    /// line): fullDescription is one paragraph of plain text, the markdown
    /// is the document as written.
    #[test]
    fn real_rules_have_a_one_paragraph_description_and_their_markdown() {
        for rule in crate::rules::ALL {
            let d = descriptor(rule, crate::rules::docs::DEFAULT_DOCS_URL);
            let full = &d.full_description.text;
            assert!(
                !full.is_empty() && !full.contains('\n') && !full.starts_with(' '),
                "{}: {full:?}",
                rule.id
            );
            assert!(!full.contains("##"), "{}: {full:?}", rule.id);
            assert!(
                d.help.markdown.starts_with("## What it does\n"),
                "{}: {:?}",
                rule.id,
                d.help.markdown
            );
            assert!(!d.help.markdown.lines().any(|l| l.starts_with(" ##")), "{}", rule.id);
            assert!(
                !d.help.text.starts_with(' ') && !d.help.text.contains("## "),
                "{}: {:?}",
                rule.id,
                d.help.text
            );
            assert_eq!(d.help_uri, format!("{}#{}", crate::rules::docs::DEFAULT_DOCS_URL, rule.id));
        }
        let rule = crate::rules::meta_of("require-concurrent-index").unwrap();
        assert_eq!(
            descriptor(rule, "").full_description.text,
            "Flags `CREATE INDEX` without `CONCURRENTLY` on a table that existed before the migration file \
             (a table created earlier in the same file is empty and invisible to other sessions: indexing it is free)."
        );
    }

    #[test]
    fn uris() {
        let uri = |p| {
            let l = artifact_location(p);
            (l.uri, l.uri_base_id)
        };
        assert_eq!(uri("./schema/a b,c.sql"), ("schema/a%20b%2Cc.sql".to_string(), Some("%SRCROOT%")));
        assert_eq!(uri("schema\\é.sql"), ("schema/%C3%A9.sql".to_string(), Some("%SRCROOT%")));
        assert_eq!(uri("/srv/x.sql"), ("file:///srv/x.sql".to_string(), None));
        assert_eq!(uri("C:\\x y.sql"), ("file:///C:/x%20y.sql".to_string(), None));
    }
}
