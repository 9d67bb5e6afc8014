//! Values that meet a table's simple CHECK constraints, so that the probe
//! can seed tables whose columns are constrained by a regular expression
//! (`kind ~ '^[a-z]+(\.[a-z]+)+$'`), a range (`amount >= 0`, `BETWEEN`) or
//! a list (`IN ('a', 'b')`, which PostgreSQL keeps as `= ANY (ARRAY[...])`).
//!
//! The CHECK is read as the server prints it (`pg_get_constraintdef`) and
//! parsed; only conditions on one plain column count, joined by AND. A
//! regular expression's example is the shortest string it matches, built
//! from its syntax tree (`regex-syntax`: PostgreSQL's advanced regular
//! expressions and Rust's agree on the classes, anchors and counted
//! repetitions such CHECKs use). What cannot be derived is left out: the
//! server still judges every row.

use std::collections::HashMap;

use regex_syntax::hir::{Class, Hir, HirKind};
use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value};

/// Column → a literal value (as text) that meets the CHECK `definition`
/// (`CHECK ((kind ~ '...'::text))`), for the columns it constrains simply.
pub fn values_for_check(definition: &str) -> HashMap<String, String> {
    let body = definition.trim().strip_prefix("CHECK").unwrap_or(definition).trim();
    let body = body.strip_suffix("NOT VALID").unwrap_or(body).trim();
    let Some(expr) = crate::pg::live_catalog::policy_expr(body) else {
        return HashMap::new();
    };
    let mut bounds: HashMap<String, Bounds> = HashMap::new();
    collect(&expr, &mut bounds);
    bounds.into_iter().filter_map(|(c, b)| b.value().map(|v| (c, v))).collect()
}

/// What the conditions on one column ask for.
#[derive(Default)]
struct Bounds {
    pattern: Option<String>,
    choices: Vec<String>,
    /// Lower and upper bounds, each with whether it is inclusive.
    low: Option<(f64, bool)>,
    high: Option<(f64, bool)>,
}

impl Bounds {
    fn value(&self) -> Option<String> {
        if let Some(first) = self.choices.first() {
            return Some(first.clone());
        }
        if let Some(p) = &self.pattern {
            return example(p);
        }
        let low = self.low.map(|(v, inclusive)| if inclusive { v } else { v.floor() + 1.0 });
        let high = self.high.map(|(v, inclusive)| if inclusive { v } else { v.ceil() - 1.0 });
        let v = match (low, high) {
            (Some(l), Some(h)) if l <= h => l,
            (Some(_), Some(_)) => return None,
            (Some(l), None) => l,
            (None, Some(h)) => h.min(0.0),
            (None, None) => return None,
        };
        Some(format!("{}", v as i64))
    }
}

fn column(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.clone()),
        Expr::Nested(e) => column(e),
        Expr::Cast { expr, .. } => column(expr),
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<Value> {
    match e {
        Expr::Value(v) => Some(v.value.clone()),
        Expr::Nested(e) => literal(e),
        Expr::Cast { expr, .. } => literal(expr),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            Value::Number(n, l) => Some(Value::Number(format!("-{n}"), l)),
            _ => None,
        },
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
        Value::Number(n, _) => Some(n.clone()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<f64> {
    text(v)?.parse().ok()
}

fn collect(e: &Expr, out: &mut HashMap<String, Bounds>) {
    match e {
        Expr::Nested(e) => collect(e, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            collect(left, out);
            collect(right, out);
        }
        Expr::BinaryOp { left, op, right } => {
            // `0 <= amount` reads as `amount >= 0`.
            let (col, lit, op) = match (column(left), literal(right)) {
                (Some(c), Some(v)) => (c, v, op.clone()),
                _ => match (literal(left), column(right)) {
                    (Some(v), Some(c)) => (c, v, flipped(op)),
                    _ => return,
                },
            };
            let b = out.entry(col).or_default();
            match op {
                BinaryOperator::PGRegexMatch => b.pattern = text(&lit),
                BinaryOperator::Eq => b.choices.extend(text(&lit)),
                BinaryOperator::Gt => b.low = number(&lit).map(|v| (v, false)),
                BinaryOperator::GtEq => b.low = number(&lit).map(|v| (v, true)),
                BinaryOperator::Lt => b.high = number(&lit).map(|v| (v, false)),
                BinaryOperator::LtEq => b.high = number(&lit).map(|v| (v, true)),
                _ => {}
            }
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => {
            if let (Some(c), Some(l), Some(h)) = (column(expr), literal(low), literal(high)) {
                let b = out.entry(c).or_default();
                b.low = number(&l).map(|v| (v, true));
                b.high = number(&h).map(|v| (v, true));
            }
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => {
            if let Some(c) = column(expr) {
                let choices: Vec<String> = list.iter().filter_map(|e| literal(e).as_ref().and_then(text)).collect();
                out.entry(c).or_default().choices.extend(choices);
            }
        }
        Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } => {
            if let (Some(c), Expr::Array(a)) = (column(left), strip(right)) {
                let choices: Vec<String> = a.elem.iter().filter_map(|e| literal(e).as_ref().and_then(text)).collect();
                out.entry(c).or_default().choices.extend(choices);
            }
        }
        _ => {}
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(e) | Expr::Cast { expr: e, .. } => strip(e),
        _ => e,
    }
}

fn flipped(op: &BinaryOperator) -> BinaryOperator {
    match op {
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        other => other.clone(),
    }
}

/// The shortest string the regular expression `pattern` matches (None when
/// it does not parse as one).
pub fn example(pattern: &str) -> Option<String> {
    let hir = regex_syntax::ParserBuilder::new().utf8(true).build().parse(pattern).ok()?;
    let mut out = String::new();
    shortest(&hir, &mut out)?;
    Some(out)
}

fn shortest(h: &Hir, out: &mut String) -> Option<()> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.push_str(std::str::from_utf8(&l.0).ok()?),
        HirKind::Class(Class::Unicode(c)) => {
            // A printable member when there is one (`[^,]` starts at NUL).
            let r = c.ranges().iter().find(|r| r.end() > ' ').or(c.ranges().first())?;
            out.push(r.start().max('!').min(r.end()));
        }
        HirKind::Class(Class::Bytes(c)) => {
            let r = c.ranges().iter().find(|r| r.end() > b' ').or(c.ranges().first())?;
            out.push(char::from(r.start().max(b'!').min(r.end())));
        }
        HirKind::Repetition(r) => {
            for _ in 0..r.min {
                shortest(&r.sub, out)?;
            }
        }
        HirKind::Capture(c) => shortest(&c.sub, out)?,
        HirKind::Concat(v) => {
            for h in v {
                shortest(h, out)?;
            }
        }
        HirKind::Alternation(v) => shortest(v.first()?, out)?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_expressions_get_the_shortest_match() {
        let events = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$";
        let e = example(events).unwrap();
        assert_eq!(e, "a.a");
        assert!(regex::Regex::new(events).unwrap().is_match(&e));
        let phone = r"^\+[1-9][0-9]{6,14}$";
        let p = example(phone).unwrap();
        assert!(regex::Regex::new(phone).unwrap().is_match(&p), "{p}");
        assert_eq!(example("^(draft|sent)$").as_deref(), Some("draft"));
    }

    #[test]
    fn checks_as_the_server_prints_them() {
        let v = values_for_check(r"CHECK ((kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'::text))");
        assert_eq!(v.get("kind").map(String::as_str), Some("a.a"));
        let v = values_for_check("CHECK (((amount >= 10) AND (amount <= 20)))");
        assert_eq!(v.get("amount").map(String::as_str), Some("10"));
        let v = values_for_check("CHECK ((score > 0))");
        assert_eq!(v.get("score").map(String::as_str), Some("1"));
        let v = values_for_check("CHECK ((status = ANY (ARRAY['open'::text, 'closed'::text])))");
        assert_eq!(v.get("status").map(String::as_str), Some("open"));
        let v = values_for_check("CHECK (((qty >= 1) AND (unit = 'kg'::text)))");
        assert_eq!((v["qty"].as_str(), v["unit"].as_str()), ("1", "kg"));
        assert!(values_for_check("CHECK ((merged_into <> id))").is_empty());
    }
}
