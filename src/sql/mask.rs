//! What the tokenizer sees: the file with everything that is not forward SQL
//! blanked out, keeping every line and column where it was so that spans
//! still point into the original text.

use std::borrow::Cow;
use std::ops::Range;

/// Returns a copy of `text` where
/// - bytes outside `up_sections` (when given: dbmate / goose files) are blank,
/// - psql meta-command lines (`\set`, `\i`, ...) are blank,
/// - template placeholders `{{ ... }}`, and the placeholders PostgreSQL
///   substitutes in an extension's scripts (`@extschema@`,
///   `@extschema:name@`, `@extowner@`, `@database_owner@`), become an
///   identifier of the same width, its letters and digits kept and every
///   other character `_` (`{{ .Schema }}` becomes `____schema___`), so
///   `{{ .Schema }}.users` and `@extschema@.f()` still parse as names.
///
/// Blanking replaces each character by one space: columns count characters,
/// so positions are unchanged.
pub fn mask_source<'a>(text: &'a str, up_sections: Option<&[Range<usize>]>) -> Cow<'a, str> {
    if up_sections.is_none() && !needs_masking(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_range = offset..offset + line.len();
        offset += line.len();
        let kept = match up_sections {
            None => true,
            Some(sections) => sections.iter().any(|s| s.start < line_range.end && line_range.start < s.end),
        };
        if !kept || line.trim_start().starts_with('\\') {
            blank(line, &mut out);
            continue;
        }
        match up_sections {
            Some(sections) if !sections.iter().any(|s| s.start <= line_range.start && line_range.end <= s.end) => {
                // A line partly inside a section: keep only the covered bytes.
                for (i, c) in line.char_indices() {
                    let at = line_range.start + i;
                    let inside = sections.iter().any(|s| s.start <= at && at < s.end);
                    out.push(if inside || c == '\n' { c } else { ' ' });
                }
            }
            _ => mask_templates(line, &mut out),
        }
    }
    Cow::Owned(out)
}

/// Whether any line starts with a backslash or any placeholder occurs: the
/// common case is neither, and then the text is used as it is.
fn needs_masking(text: &str) -> bool {
    let bytes = text.as_bytes();
    // Only the rare `\`, `{` and `@` bytes need a look (memchr's vectorised
    // search: a byte-by-byte loop here was 2% of a check).
    memchr::memchr3_iter(b'\\', b'{', b'@', bytes).any(|i| {
        match bytes[i] {
            b'{' => return bytes.get(i + 1) == Some(&b'{'),
            b'@' => return extension_placeholder(&bytes[i..]).is_some(),
            _ => {}
        }
        let line_start = memchr::memrchr(b'\n', &bytes[..i]).map_or(0, |n| n + 1);
        bytes[line_start..i].iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
    })
}

fn blank(line: &str, out: &mut String) {
    for c in line.chars() {
        out.push(if c == '\n' || c == '\r' { c } else { ' ' });
    }
}

/// The length of the extension script placeholder `bytes` starts with.
fn extension_placeholder(bytes: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(b"@")?;
    let name_len = ["extschema@", "extowner@", "database_owner@"]
        .iter()
        .find(|n| rest.starts_with(n.as_bytes()))
        .map(|n| n.len())
        .or_else(|| {
            // `@extschema:name@` (PostgreSQL 16: another extension's schema).
            let after = rest.strip_prefix(b"extschema:")?;
            let end = after.iter().position(|&b| b == b'@')?;
            (end > 0 && after[..end].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')).then_some("extschema:".len() + end + 1)
        })?;
    Some(1 + name_len)
}

fn mask_templates(line: &str, out: &mut String) {
    let bytes = line.as_bytes();
    let mut copied = 0;
    let mut from = 0;
    while let Some(at) = memchr::memchr2(b'{', b'@', &bytes[from..]).map(|i| from + i) {
        let end = if bytes[at] == b'{' {
            (bytes.get(at + 1) == Some(&b'{'))
                .then(|| memchr::memmem::find(&bytes[at + 2..], b"}}").map(|close| at + 2 + close + 2))
                .flatten()
        } else {
            extension_placeholder(&bytes[at..]).map(|n| at + n)
        };
        match end {
            Some(end) => {
                out.push_str(&line[copied..at]);
                // Its letters (lower-cased: a placeholder in a quoted name,
                // `"{{ .Schema }}"`, is the same name as one outside quotes)
                // and digits stay, so messages still say what it stood for
                // (`__schema__.prices`).
                out.extend(
                    line[at..end]
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }),
                );
                copied = end;
                from = end;
            }
            None => from = at + 1,
        }
    }
    out.push_str(&line[copied..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_is_needed_only_for_line_start_backslashes_and_templates() {
        for (text, needed) in [
            ("SELECT 1;\n", false),
            ("SELECT E'a\\nb', '{x}';\n", false),
            ("SELECT 1;\n\\set x 1\n", true),
            ("SELECT 1;\n  \t\\i file.sql\n", true),
            ("\\connect db\n", true),
            ("SELECT 1; \\gset\n", false),
            ("SELECT '{{ .Schema }}';\n", true),
            ("SELECT '{', '{';\n", false),
            ("DROP FUNCTION @extschema@.f();\n", true),
            ("SELECT a @> b, '@x@', 'me@example.com';\n", false),
        ] {
            assert_eq!(needs_masking(text), needed, "{text:?}");
        }
    }

    #[test]
    fn keeps_positions() {
        let text = "\\set ON_ERROR_STOP on\nCREATE TABLE {{ index .Options \"Namespace\" }}.users (id int);\n";
        let masked = mask_source(text, None);
        assert_eq!(masked.lines().count(), 2);
        assert!(masked.starts_with("                     \n"));
        let l2 = masked.lines().nth(1).unwrap();
        assert_eq!(l2.chars().count(), text.lines().nth(1).unwrap().chars().count());
        assert_eq!(l2, "CREATE TABLE ___index__options__namespace____.users (id int);");
    }

    #[test]
    fn extension_script_placeholders_become_names() {
        let text = "DROP FUNCTION @extschema@.f(a int);\nGRANT USAGE ON SCHEMA s TO @extowner@;\nSELECT @extschema:postgis@.st_x(p), a @> b, '{not}';\n";
        let masked = mask_source(text, None);
        assert_eq!(
            masked,
            "DROP FUNCTION _extschema_.f(a int);\nGRANT USAGE ON SCHEMA s TO _extowner_;\nSELECT _extschema_postgis_.st_x(p), a @> b, '{not}';\n"
        );
    }

    #[test]
    fn blanks_outside_sections() {
        let text = "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n";
        let up_end = text.find("-- migrate:down").unwrap();
        let sections = [std::ops::Range { start: 0, end: up_end }];
        let masked = mask_source(text, Some(&sections));
        assert!(masked.contains("CREATE TABLE a"));
        assert!(!masked.contains("DROP"));
        assert_eq!(masked.len(), text.len());
    }
}
