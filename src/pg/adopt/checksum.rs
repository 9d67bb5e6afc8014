//! The checksums other migration tools record, computed as each tool does.
//!
//! - sqlx: SHA-384 of the file's text (`sqlx_core::migrate::checksum`),
//!   stored as `bytea`.
//! - Flyway: CRC-32 of the file read line by line (Java's
//!   `BufferedReader.readLine`: `\n`, `\r\n` and `\r` end a line and are not
//!   part of it), a byte-order mark dropped from the first line, each line's
//!   UTF-8 bytes fed in turn; stored as a signed 32-bit integer
//!   (`org.flywaydb.core.internal.resolver.ChecksumCalculator`).
//! - Prisma: SHA-256 of the file's text as lower-case hex; a recorded
//!   checksum also matches the file with its line endings converted either
//!   way, and the old non-zero-padded hex (`schema-engine` `checksum.rs`).

use sha2::{Digest, Sha256, Sha384};

pub fn sqlx(text: &[u8]) -> Vec<u8> {
    Sha384::digest(text).to_vec()
}

pub fn flyway(text: &str) -> i32 {
    let mut crc = crc32fast::Hasher::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        crc.update(&rest.as_bytes()[..end]);
        let after = &rest[end..];
        rest = if let Some(r) = after.strip_prefix("\r\n") {
            r
        } else if after.is_empty() {
            after
        } else {
            &after[1..]
        };
    }
    crc.finalize() as i32
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Whether a Prisma checksum recorded in `_prisma_migrations` matches the file.
pub fn prisma_matches(text: &str, recorded: &str) -> bool {
    let variants = [
        sha256(text),
        sha256(&text.replace("\r\n", "\n")),
        sha256(&text.replace('\n', "\r\n")),
    ];
    variants.iter().any(|d| {
        let hex = if !recorded.is_empty() && recorded.len() != 64 {
            d.iter().map(|b| format!("{b:x}")).collect::<String>()
        } else {
            hex::encode(d)
        };
        hex == recorded
    })
}

/// The checksum Prisma records for a file (for messages and tests).
pub fn prisma(text: &str) -> String {
    hex::encode(sha256(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed by the JDK with Flyway's algorithm (BufferedReader,
    /// BOM filter, java.util.zip.CRC32 over each line's UTF-8 bytes).
    #[test]
    fn flyway_matches_the_jdk() {
        let cases: &[(&str, i32)] = &[
            ("", 0),
            ("SELECT 1;", 78787420),
            ("SELECT 1;\n", 78787420),
            ("a\nb", -1635563411),
            ("a\r\nb\r\n", -1635563411),
            ("a\rb", -1635563411),
            ("\u{feff}CREATE TABLE t (id int);\n\nSELECT 'été';\n", 57979479),
            ("line1\n\n\nline4", 1791168780),
            ("x\r\n\r\ny", -1880741735),
        ];
        for (text, want) in cases {
            assert_eq!(flyway(text), *want, "{text:?}");
        }
    }

    #[test]
    fn sqlx_is_sha384_of_the_text() {
        assert_eq!(
            hex::encode(sqlx(b"abc")),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
    }

    #[test]
    fn prisma_accepts_either_line_ending_and_old_hex() {
        assert_eq!(prisma("hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        let unix = "CREATE TABLE a (id int);\nSELECT 1;\n";
        let windows = unix.replace('\n', "\r\n");
        assert!(prisma_matches(unix, &prisma(&windows)));
        assert!(prisma_matches(&windows, &prisma(unix)));
        assert!(!prisma_matches("abc", &prisma("abcd")));
        let old: String = Sha256::digest(b"hello").iter().map(|b| format!("{b:x}")).collect();
        assert!(old.len() < 64);
        assert!(prisma_matches("hello", &old));
    }
}
