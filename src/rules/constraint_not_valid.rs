use sqlparser::ast::{AlterTableOperation, ColumnOption, Statement, TableConstraint};

use super::fixes;
use super::lock::{self, age_of};
use super::tokens;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::{Fix, NewFile};

crate::declare_rule! {
    /// ## What it does
    /// Flags a `FOREIGN KEY` or `CHECK` constraint added to a table that
    /// existed before the migration file without `NOT VALID` (also a new
    /// column with `REFERENCES`), and a `VALIDATE CONSTRAINT` that runs in
    /// the same transaction as the `ADD ... NOT VALID` it validates.
    ///
    /// ## Why is this bad?
    /// Adding a validated constraint scans the whole table while holding the
    /// `ALTER TABLE` lock: `ACCESS EXCLUSIVE` for a `CHECK` (nothing can read
    /// or write the table), `SHARE ROW EXCLUSIVE` on both tables for a
    /// foreign key (no writes). `NOT VALID` makes the add instant (only new
    /// rows are checked); a later `VALIDATE CONSTRAINT` scans under
    /// `SHARE UPDATE EXCLUSIVE`, which lets reads and writes continue. In the
    /// same transaction as the add, the validation runs while the add's lock
    /// is still held, which gains nothing.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: 0002_orders_customer_fk.sql, orders was created in 0001
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id);
    /// -- good
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
    /// -- and in 0003_validate_orders_customer_fk.sql
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
    /// ```
    ///
    /// ## How to fix
    /// Add the constraint `NOT VALID`, and validate it in the next migration
    /// file. `strata check --fix` does both for a named constraint: it adds
    /// `NOT VALID` in place and writes the `VALIDATE` migration next to the
    /// file (or moves a same-transaction `VALIDATE` there).
    ///
    /// ## PostgreSQL versions
    /// - 18: a `NOT ENFORCED` constraint checks no rows and is not flagged; before 18, `NOT ENFORCED` is flagged as syntax PostgreSQL rejects. NOT NULL constraints are judged by `set-not-null`.
    pub struct ConstraintNotValid {
        id: "constraint-not-valid",
        group: LockSafety,
        severity: Error,
        summary: "FK/CHECK added to an existing table without NOT VALID, or validated in the same transaction",
        needs_workspace: false,
    }
}

/// The migration that validates `constraint` of `table` (both as written).
pub(crate) fn validate_file(cx: &StatementCtx, table: &str, constraint: &str) -> NewFile {
    NewFile {
        name: format!("validate_{}", fixes::slug(constraint)),
        content: format!(
            "-- Validates {constraint}, added NOT VALID by {}: scans {table} under SHARE UPDATE EXCLUSIVE (reads and writes continue).\nALTER TABLE {table} VALIDATE CONSTRAINT {constraint};\n",
            fixes::file_name(&cx.file.parsed.source.path)
        ),
    }
}

impl ConstraintNotValid {
    fn check_add(&self, cx: &StatementCtx, op_index: usize, constraint: &TableConstraint, out: &mut Vec<Finding>) {
        let Some(Statement::AlterTable(at)) = cx.stmt.ast() else { return };
        if crate::catalog::not_enforced(constraint) {
            // A NOT ENFORCED constraint checks no row, old or new.
            if let Some(f) = super::helpers::newer_syntax(cx, "ENFORCED", "NOT ENFORCED", 18) {
                out.push(f.help("add the constraint NOT VALID instead (new rows are checked), or drop the clause"));
            }
            return;
        }
        let (kind, name, lock_mode) = match constraint {
            TableConstraint::ForeignKey(fk) => (
                "FOREIGN KEY",
                fk.name.as_ref(),
                "both tables are locked against writes (SHARE ROW EXCLUSIVE)",
            ),
            TableConstraint::Check(ch) => (
                "CHECK",
                ch.name.as_ref(),
                "the table is locked against reads and writes (ACCESS EXCLUSIVE)",
            ),
            _ => return,
        };
        let age = age_of(cx, &at.name);
        let table = cx.catalog.resolve(&at.name);
        // The table has a constraint of that name already: PostgreSQL refuses
        // the statement before it scans anything (and a DO block guarded by
        // `IF NOT EXISTS (... conname = ...)` does not run it).
        if let (Some(n), Some(t)) = (name, cx.catalog.table(&table)) {
            if t.constraint(&crate::catalog::ident_name(n)).is_some() {
                return;
            }
        }
        let region = name
            .and_then(ident_region)
            .unwrap_or_else(|| tokens::kw_region(cx, if kind == "CHECK" { "CHECK" } else { "FOREIGN" }));
        let label = name.map_or(String::new(), |n| format!(" `{n}`"));
        let fix = fixes::editable(cx.file).and_then(|()| {
            let n = name.ok_or("the constraint has no name for a later VALIDATE to use: name it (ADD CONSTRAINT <name> ...)")?;
            let toks = tokens::tokens(&cx.file.parsed.source, cx.stmt);
            let ops = tokens::alter_table_operations(&toks);
            let last = ops
                .get(op_index)
                .and_then(|op| op.end.checked_sub(1))
                .map(|i| &toks[i])
                .ok_or("strata could not place NOT VALID in this statement")?;
            Ok(Fix {
                description: "add the constraint NOT VALID and validate it in the next migration".to_string(),
                edits: vec![fixes::insert_after(last, " NOT VALID")],
                new_file: Some(validate_file(cx, &at.name.to_string(), &n.to_string())),
            })
        });
        out.push(
            Finding::new(
                region,
                format!(
                    "{kind} constraint{label} added to {} without NOT VALID: every row is checked while {lock_mode}",
                    lock::describe(age, &table)
                ),
            )
            .help(format!(
                "add it `NOT VALID`, then `ALTER TABLE {} VALIDATE CONSTRAINT {}` in the next migration",
                at.name,
                name.map_or("<name>".to_string(), |n| n.to_string())
            ))
            .with_fix(fix),
        );
    }
}

impl Rule for ConstraintNotValid {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::AlterTable(at)) = cx.stmt.ast() else { return };
        let age = age_of(cx, &at.name);
        let table = cx.catalog.resolve(&at.name);
        for (i, op) in at.operations.iter().enumerate() {
            match op {
                AlterTableOperation::AddConstraint {
                    constraint,
                    not_valid: false,
                } if age.is_live() => self.check_add(cx, i, constraint, out),
                AlterTableOperation::AddColumn { column_def, .. } if age.is_live() => {
                    let Some(fk) = column_def.options.iter().find_map(|o| match &o.option {
                        ColumnOption::ForeignKey(fk) => Some(fk),
                        _ => None,
                    }) else {
                        continue;
                    };
                    out.push(
                        Finding::new(
                            ident_region(&column_def.name).unwrap_or(cx.stmt.region),
                            format!(
                                "new column `{}` of {} references `{}`: the foreign key is validated while both tables are locked against writes",
                                column_def.name,
                                lock::describe(age, &table),
                                fk.foreign_table
                            ),
                        )
                        .help(format!(
                            "add the column without REFERENCES, then `ALTER TABLE {} ADD CONSTRAINT ... FOREIGN KEY ({}) REFERENCES {} NOT VALID` and VALIDATE it in the next migration",
                            at.name, column_def.name, fk.foreign_table
                        )),
                    );
                }
                AlterTableOperation::ValidateConstraint { name } => {
                    let cname = crate::catalog::ident_name(name);
                    let Some(added) = cx.catalog.table(&table).and_then(|t| {
                        t.constraints
                            .iter()
                            .find(|c| c.not_valid && c.origin.file == cx.file.id && c.name.as_deref() == Some(cname.as_str()))
                    }) else {
                        continue;
                    };
                    let add_at = added.origin.stmt as usize;
                    let tx = lock::transaction_at(cx.env, cx.file, add_at);
                    if tx == lock::Tx::None || tx != lock::transaction_at(cx.env, cx.file, cx.index) {
                        continue;
                    }
                    let line = cx.file.parsed.statements[add_at].region.start.line;
                    let source = &cx.file.parsed.source;
                    let fix = fixes::editable(cx.file).and_then(|()| {
                        if at.operations.len() > 1 {
                            return Err("the VALIDATE shares its ALTER TABLE with other operations: split the statement".to_string());
                        }
                        Ok(Fix {
                            description: "move the VALIDATE into the next migration".to_string(),
                            edits: vec![fixes::remove_statement(source, cx.stmt)],
                            new_file: Some(validate_file(cx, &at.name.to_string(), &name.to_string())),
                        })
                    });
                    out.push(
                        Finding::new(
                            ident_region(name).unwrap_or(cx.stmt.region),
                            format!(
                                "VALIDATE CONSTRAINT `{cname}` runs in the same transaction as its ADD ... NOT VALID (line {line}): the scan happens while the add's lock is still held"
                            ),
                        )
                        .help("validate in the next migration file, after the NOT VALID add has committed")
                        .with_fix(fix),
                    );
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_pg, fixed_text, ids, known, render_rule};

    const TABLES: &str = "CREATE TABLE customers (id bigint PRIMARY KEY);\nCREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, total numeric(12, 2));\n";

    /// PostgreSQL names an unnamed constraint (`orders_customer_id_fkey`);
    /// adding one of a name the table has fails before any scan, so the
    /// idempotent guard `IF NOT EXISTS (... conname = ...)` is quiet, and the
    /// catalog keeps one constraint (fk-missing-index says it once).
    #[test]
    fn quiet_on_a_constraint_the_table_already_has_by_name() {
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                "CREATE TABLE customers (id bigint PRIMARY KEY);\nCREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id), total numeric CHECK (total > 0));\n",
            ),
            (
                "core/0002_guarded.sql",
                "DO $$ BEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'orders_customer_id_fkey') THEN\n    ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id);\n  END IF;\n  ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total > 0);\nEND $$;\n",
            ),
        ]);
        assert_eq!(ids(&d, "constraint-not-valid"), 0, "{d:#?}");
        assert_eq!(ids(&d, "fk-missing-index"), 1, "{d:#?}");
        // Dropped by PostgreSQL's name, it is gone.
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                "CREATE TABLE customers (id bigint PRIMARY KEY);\nCREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id));\n",
            ),
            ("core/0002_drop.sql", "ALTER TABLE orders DROP CONSTRAINT orders_customer_id_fkey;\n"),
            (
                "core/0003_again.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n",
            ),
        ]);
        assert_eq!(ids(&d, "fk-missing-index"), 2, "{d:#?}");
    }

    #[test]
    fn fires_on_a_validated_fk_to_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_orders.sql", TABLES),
            (
                "core/0002_orders_customer_fk.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;\n",
            ),
        ]);
        assert_eq!(ids(&d, "constraint-not-valid"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "constraint-not-valid"));
        assert_eq!(
            fixed_text(&d, "constraint-not-valid").unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE NOT VALID;\n"
        );
        let fix = d
            .iter()
            .find(|x| x.rule == known("constraint-not-valid"))
            .unwrap()
            .fix
            .clone()
            .unwrap();
        let new_file = fix.new_file.unwrap();
        assert_eq!(new_file.name, "validate_orders_customer_fk");
        assert!(new_file
            .content
            .ends_with("ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n"));
    }

    #[test]
    fn fires_on_a_check_among_several_operations() {
        let d = check_ws(&[
            ("core/0001_orders.sql", TABLES),
            (
                "core/0002_orders_total.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0), ADD COLUMN note text;\n",
            ),
        ]);
        assert_eq!(
            fixed_text(&d, "constraint-not-valid").unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID, ADD COLUMN note text;\n"
        );
    }

    #[test]
    fn fires_on_validate_in_the_same_transaction() {
        let d = check_ws(&[
            ("core/0001_orders.sql", TABLES),
            (
                "core/0002_fk.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n",
            ),
        ]);
        assert_eq!(ids(&d, "constraint-not-valid"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "constraint-not-valid"));
        assert_eq!(
            fixed_text(&d, "constraint-not-valid").unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n"
        );
    }

    #[test]
    fn quiet_on_not_valid_new_tables_and_later_validation() {
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                &format!("{TABLES}ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);\n"),
            ),
            (
                "core/0002_fk.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n",
            ),
            (
                "core/0003_validate.sql",
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n",
            ),
        ]);
        assert_eq!(ids(&d, "constraint-not-valid"), 0, "{d:#?}");
    }

    #[test]
    fn not_enforced_checks_no_row_on_18_and_is_rejected_before() {
        let files = [
            ("core/0001_orders.sql", TABLES),
            (
                "core/0002_total.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT ENFORCED;\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT ENFORCED;\n",
            ),
        ];
        assert_eq!(ids(&check_ws_pg(18, &files), "constraint-not-valid"), 0);
        let d = check_ws_pg(17, &files);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("constraint-not-valid")).collect();
        assert_eq!(f.len(), 2, "{d:#?}");
        assert_eq!(
            f[0].message,
            "NOT ENFORCED is PostgreSQL 18 syntax: PostgreSQL 17 rejects the statement"
        );
        assert_eq!(f[0].region.start, crate::diag::Pos::new(1, 80));
    }

    #[test]
    fn fires_on_a_new_column_with_references() {
        let d = check_ws(&[
            ("core/0001_orders.sql", TABLES),
            (
                "core/0002_col.sql",
                "ALTER TABLE orders ADD COLUMN payer_id bigint REFERENCES customers (id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "constraint-not-valid"), 1, "{d:#?}");
    }
}
