//! The front end's candidates measured on the shared corpora, one thread:
//! how each finds the statements (split), how long parsing them takes and
//! how many it accepts. The figures behind docs/decisions/0001-frontend.md.
//!
//! Run: `cargo bench --bench frontend` (needs ../shared/corpora, or
//! STRATA_CORPORA).

#[path = "support/mod.rs"]
mod support;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

fn corpus_texts() -> Vec<String> {
    support::corpus_files(&support::corpora_dir())
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("utf8");
            let source = std::sync::Arc::new(strata::diag::SourceFile::new(String::new(), text));
            // What the front end sees: down sections and psql commands blanked.
            let sections = strata::workspace::forward_sections(&source.text);
            strata::sql::mask_source(&source.text, sections.as_deref()).into_owned()
        })
        .collect()
}

fn main() {
    strata::alloc::tune();
    let texts = corpus_texts();
    let bytes: usize = texts.iter().map(String::len).sum();
    // The statements, as PostgreSQL's scanner splits them (the reference).
    let statements: Vec<String> = texts
        .iter()
        .flat_map(|t| {
            let f = strata::sql::parse_text("b.sql", t);
            f.statements
                .iter()
                .filter(|s| s.body.is_none())
                .map(|s| t[s.bytes.clone()].to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    println!(
        "{} files, {:.2} MB, {} statements; best of 5, one thread\n",
        texts.len(),
        bytes as f64 / 1e6,
        statements.len()
    );
    let dialect = PostgreSqlDialect {};

    let (t_tok, _) = support::best_of(5, || {
        texts
            .iter()
            .map(|t| Tokenizer::new(&dialect, t).tokenize_with_location().map_or(0, |v| v.len()))
            .sum::<usize>()
    });
    let (t_scan, _) = support::best_of(5, || {
        texts
            .iter()
            .map(|t| strata::sql::postgres::scan(t).map_or(0, |v| v.len()))
            .sum::<usize>()
    });
    let (t_sqlparser, accepted_sqlparser) = support::best_of(5, || {
        statements
            .iter()
            .filter(|s| {
                let Ok(tokens) = Tokenizer::new(&dialect, s).tokenize_with_location() else {
                    return false;
                };
                let mut p = Parser::new(&dialect).with_tokens_with_locations(tokens);
                p.parse_statement().is_ok() && p.peek_token().token == Token::EOF
            })
            .count()
    });
    let (t_pg, accepted_pg) = support::best_of(5, || statements.iter().filter(|s| strata::sql::postgres::parse(s).is_ok()).count());
    let (t_front, understood) = support::best_of(5, || {
        texts
            .iter()
            .map(|t| strata::sql::parse_text("b.sql", t).understood_count())
            .sum::<usize>()
    });
    let n = statements.len() as f64;
    println!("{:<44} {:>10} {:>10}", "candidate", "time ms", "accepted");
    println!(
        "{:<44} {:>10.1}",
        "split: sqlparser 0.63 tokenizer (whole files)",
        support::ms(t_tok)
    );
    println!("{:<44} {:>10.1}", "split: PostgreSQL scanner (libpg_query 18)", support::ms(t_scan));
    println!(
        "{:<44} {:>10.1} {:>9.2}%",
        "parse: sqlparser 0.63 (tokenize + parse)",
        support::ms(t_sqlparser),
        100.0 * accepted_sqlparser as f64 / n
    );
    println!(
        "{:<44} {:>10.1} {:>9.2}%",
        "parse: PostgreSQL grammar (pg_query 18.1)",
        support::ms(t_pg),
        100.0 * accepted_pg as f64 / n
    );
    println!(
        "{:<44} {:>10.1} {:>9.2}%",
        "strata's front end (split + both + bodies)",
        support::ms(t_front),
        100.0 * understood as f64 / n
    );
}
