//! The shapes of statements sqlparser cannot parse whose whole meaning for
//! the lock-safety rules is in their keywords (REINDEX, DROP INDEX
//! CONCURRENTLY, DETACH PARTITION, CLUSTER, VACUUM FULL, ALTER DOMAIN).

use sqlparser::ast::ObjectName;
use sqlparser::tokenizer::Token;

use super::tokens::{name_at, tokens, Tok};
use crate::diag::SourceFile;
use crate::sql::Statement;

/// Statements sqlparser 0.63 cannot parse whose whole meaning for the
/// lock-safety rules is in their keywords.
#[derive(Clone, Debug)]
pub enum Shape {
    /// `REINDEX [(options)] {INDEX|TABLE|SCHEMA|DATABASE|SYSTEM} [CONCURRENTLY] [name]`.
    Reindex {
        kind: String,
        name: Option<ObjectName>,
        concurrently: bool,
    },
    /// `DROP INDEX CONCURRENTLY [IF EXISTS] name`.
    DropIndexConcurrently,
    /// `ALTER TABLE [IF EXISTS] [ONLY] t DETACH PARTITION p [CONCURRENTLY | FINALIZE]`.
    DetachPartition {
        table: ObjectName,
        concurrently: bool,
        finalize: bool,
    },
    /// `CLUSTER [VERBOSE] [t [USING i]]`.
    Cluster { table: Option<ObjectName> },
    /// `VACUUM (FULL ...) [t]`: the parenthesized form sqlparser rejects.
    VacuumFull { table: Option<ObjectName> },
    /// `ALTER DOMAIN d ADD [CONSTRAINT c] CHECK (...) [NOT VALID]` or `ALTER DOMAIN d SET NOT NULL`.
    AlterDomainConstraint {
        domain: ObjectName,
        not_valid: bool,
        set_not_null: bool,
    },
}

/// Recognizes an unparsed statement's [`Shape`] from its tokens.
pub fn keyword_shape(source: &SourceFile, stmt: &Statement) -> Option<Shape> {
    let u = stmt.unparsed()?;
    // The statement's words (upper-cased keywords and plain names, in
    // order) rule out most statements before they are tokenized again (an
    // unread ALTER TABLE is asked about by several rules).
    let word = |i: usize| u.words.get(i).map_or("", String::as_str);
    let has = |w: &str| u.words.iter().any(|x| x == w);
    let possible = match word(0) {
        "REINDEX" | "CLUSTER" => true,
        "DROP" => word(1) == "INDEX" && word(2) == "CONCURRENTLY",
        "ALTER" => (word(1) == "TABLE" && has("DETACH")) || word(1) == "DOMAIN",
        "VACUUM" => has("FULL"),
        _ => false,
    };
    if !possible {
        return None;
    }
    let toks = tokens(source, stmt);
    shape_of(&toks)
}

fn shape_of(toks: &[Tok]) -> Option<Shape> {
    let kw = |i: usize, k: &str| toks.get(i).is_some_and(|t| t.is_kw(k));
    let skip_parens = |mut i: usize| -> (usize, bool) {
        let mut full = false;
        if matches!(toks.get(i).map(|t| &t.token), Some(Token::LParen)) {
            let mut depth = 0;
            while let Some(t) = toks.get(i) {
                match t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => full |= t.is_kw("FULL"),
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
        }
        (i, full)
    };
    if kw(0, "REINDEX") {
        let (mut i, _) = skip_parens(1);
        let options_concurrently =
            toks[1..i].iter().any(|t| t.is_kw("CONCURRENTLY")) && !toks[1..i].iter().any(|t| t.is_kw("FALSE") || t.is_kw("OFF"));
        let Token::Word(kind) = &toks.get(i)?.token else { return None };
        let kind = kind.value.to_ascii_uppercase();
        if !matches!(kind.as_str(), "INDEX" | "TABLE" | "SCHEMA" | "DATABASE" | "SYSTEM") {
            return None;
        }
        i += 1;
        let concurrently = kw(i, "CONCURRENTLY");
        if concurrently {
            i += 1;
        }
        let name = name_at(toks, i).map(|(n, _)| n);
        return Some(Shape::Reindex {
            kind,
            name,
            concurrently: concurrently || options_concurrently,
        });
    }
    if kw(0, "DROP") && kw(1, "INDEX") && kw(2, "CONCURRENTLY") {
        let mut i = 3;
        if kw(i, "IF") && kw(i + 1, "EXISTS") {
            i += 2;
        }
        return name_at(toks, i).map(|_| Shape::DropIndexConcurrently);
    }
    if kw(0, "ALTER") && kw(1, "TABLE") {
        let (table, next) = super::tokens::alter_table_name(toks)?;
        if !(kw(next, "DETACH") && kw(next + 1, "PARTITION")) {
            return None;
        }
        let (_, after) = name_at(toks, next + 2)?;
        return Some(Shape::DetachPartition {
            table,
            concurrently: kw(after, "CONCURRENTLY"),
            finalize: kw(after, "FINALIZE"),
        });
    }
    if kw(0, "CLUSTER") {
        let mut i = 1;
        if kw(i, "VERBOSE") {
            i += 1;
        }
        let (i, _) = skip_parens(i);
        return Some(Shape::Cluster {
            table: name_at(toks, i).map(|(n, _)| n),
        });
    }
    if kw(0, "VACUUM") {
        let (i, full) = skip_parens(1);
        return full.then(|| Shape::VacuumFull {
            table: name_at(toks, i).map(|(n, _)| n),
        });
    }
    if kw(0, "ALTER") && kw(1, "DOMAIN") {
        let (domain, i) = name_at(toks, 2)?;
        if kw(i, "SET") && kw(i + 1, "NOT") && kw(i + 2, "NULL") {
            return Some(Shape::AlterDomainConstraint {
                domain,
                not_valid: false,
                set_not_null: true,
            });
        }
        if !kw(i, "ADD") {
            return None;
        }
        let n = toks.len();
        let not_valid = n >= 2 && toks[n - 2].is_kw("NOT") && toks[n - 1].is_kw("VALID");
        return Some(Shape::AlterDomainConstraint {
            domain,
            not_valid,
            set_not_null: false,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    fn shape(sql: &str) -> Option<Shape> {
        let f = parse_text("t.sql", sql);
        keyword_shape(&f.source, &f.statements[0])
    }

    #[test]
    fn keyword_shapes() {
        assert!(matches!(
            shape("REINDEX (VERBOSE) INDEX CONCURRENTLY core.orders_pkey"),
            Some(Shape::Reindex { concurrently: true, ref kind, name: Some(_) }) if kind == "INDEX"
        ));
        assert!(matches!(
            shape("REINDEX TABLE orders"),
            Some(Shape::Reindex { concurrently: false, .. })
        ));
        assert!(matches!(
            shape("DROP INDEX CONCURRENTLY IF EXISTS a_idx"),
            Some(Shape::DropIndexConcurrently)
        ));
        assert!(matches!(
            shape("ALTER TABLE ONLY events DETACH PARTITION events_2023 CONCURRENTLY"),
            Some(Shape::DetachPartition { concurrently: true, .. })
        ));
        assert!(matches!(
            shape("CLUSTER orders USING orders_pkey"),
            Some(Shape::Cluster { table: Some(_) })
        ));
        assert!(matches!(
            shape("VACUUM (FULL, ANALYZE) orders"),
            Some(Shape::VacuumFull { table: Some(_) })
        ));
        assert!(shape("VACUUM (ANALYZE) orders").is_none());
        assert!(matches!(
            shape("ALTER DOMAIN email ADD CONSTRAINT email_at CHECK (VALUE LIKE '%@%') NOT VALID"),
            Some(Shape::AlterDomainConstraint { not_valid: true, .. })
        ));
    }
}
