use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_relations, AlterPolicyOperation, AlterTableOperation, ColumnOption, CreateTableLikeKind, ObjectName, ObjectType,
    Statement as Ast, TableConstraint,
};

use super::helpers::name_region;
use super::{Finding, LayerInfo, Rule, RuleMeta, StatementCtx};
use crate::workspace::LayerKind;

crate::declare_rule! {
    /// ## What it does
    /// Flags a table or view referenced, altered or dropped across a forbidden
    /// layer edge: core referencing a vertical or bespoke object, a vertical
    /// referencing another vertical's (or a bespoke layer's) object, a bespoke
    /// layer referencing another tenant's bespoke layer or a vertical its
    /// tenants do not have, and any layer altering or dropping a table of
    /// another layer (ALTER TABLE, DROP, CREATE/ALTER/DROP POLICY, CREATE
    /// TRIGGER). Indexes, views and foreign keys on lower-layer tables are
    /// references, which are allowed downwards.
    ///
    /// ## Why is this bad?
    /// A tenant database is core, then at most one vertical, then at most one
    /// bespoke layer; a plain tenant has core alone. A dependency that points
    /// up or sideways breaks every tenant that lacks the other layer: the
    /// migration fails on part of the fleet. A layer that alters a lower
    /// layer's table forks that table per vertical or per tenant, and the
    /// next core migration written against the canonical shape fails or,
    /// worse, silently behaves differently.
    ///
    /// ## Example
    /// ```sql
    /// -- bad (in schema/verticals/crm/): trips belongs to the travel vertical
    /// CREATE TABLE trip_invoices (id uuid PRIMARY KEY, trip_id uuid REFERENCES trips (id));
    /// -- bad (in schema/verticals/crm/): contacts belongs to core
    /// ALTER TABLE contacts ADD COLUMN pipeline_status text;
    /// -- good: the vertical keeps its data in its own table, keyed by contact_id
    /// CREATE TABLE contact_pipeline (contact_id uuid PRIMARY KEY REFERENCES contacts (id), status text);
    /// ```
    ///
    /// ## How to fix
    /// Move what several layers need down into the lowest layer that all of
    /// them share (usually core), and keep each layer's additions in its own
    /// tables, keyed by the lower layer's ids.
    pub struct LayerBoundary {
        id: "layer-boundary",
        group: Governance,
        severity: Error,
        summary: "an object referenced, altered or dropped across a forbidden layer edge",
        needs_workspace: true,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Reference,
    Alter,
    Drop,
}

fn relations_of<V: sqlparser::ast::Visit>(node: &V, out: &mut Vec<(ObjectName, Use)>) {
    let _ = visit_relations(node, |r| {
        out.push((r.clone(), Use::Reference));
        ControlFlow::<()>::Continue(())
    });
}

/// The tables and views a statement uses, and how.
fn uses(stmt: &Ast) -> Vec<(ObjectName, Use)> {
    let mut out = Vec::new();
    let fk_targets = |options: &[sqlparser::ast::ColumnOptionDef], out: &mut Vec<(ObjectName, Use)>| {
        for o in options {
            if let ColumnOption::ForeignKey(fk) = &o.option {
                out.push((fk.foreign_table.clone(), Use::Reference));
            }
        }
    };
    match stmt {
        Ast::CreateTable(ct) => {
            for c in &ct.columns {
                fk_targets(&c.options, &mut out);
            }
            for k in &ct.constraints {
                if let TableConstraint::ForeignKey(fk) = k {
                    out.push((fk.foreign_table.clone(), Use::Reference));
                }
            }
            out.extend(
                ct.partition_of
                    .iter()
                    .chain(ct.inherits.iter().flatten())
                    .map(|n| (n.clone(), Use::Reference)),
            );
            if let Some(q) = &ct.query {
                relations_of(q.as_ref(), &mut out);
            }
            // `LIKE source`: the new table's shape is the source's.
            if let Some(CreateTableLikeKind::Parenthesized(l) | CreateTableLikeKind::Plain(l)) = &ct.like {
                out.push((l.name.clone(), Use::Reference));
            }
        }
        Ast::AlterTable(at) => {
            out.push((at.name.clone(), Use::Alter));
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => fk_targets(&column_def.options, &mut out),
                    AlterTableOperation::AddConstraint {
                        constraint: TableConstraint::ForeignKey(fk),
                        ..
                    } => out.push((fk.foreign_table.clone(), Use::Reference)),
                    _ => {}
                }
            }
        }
        Ast::Drop {
            object_type: ObjectType::Table | ObjectType::View | ObjectType::MaterializedView,
            names,
            ..
        } => out.extend(names.iter().map(|n| (n.clone(), Use::Drop))),
        Ast::CreateView(cv) => relations_of(cv.query.as_ref(), &mut out),
        Ast::CreateIndex(ci) => out.push((ci.table_name.clone(), Use::Reference)),
        Ast::CreatePolicy(p) => {
            out.push((p.table_name.clone(), Use::Alter));
            for e in p.using.iter().chain(&p.with_check) {
                relations_of(e, &mut out);
            }
        }
        Ast::AlterPolicy(p) => {
            out.push((p.table_name.clone(), Use::Alter));
            if let AlterPolicyOperation::Apply { using, with_check, .. } = &p.operation {
                for e in using.iter().chain(with_check) {
                    relations_of(e, &mut out);
                }
            }
        }
        Ast::DropPolicy(p) => out.push((p.table_name.clone(), Use::Alter)),
        Ast::CreateTrigger(t) => out.push((t.table_name.clone(), Use::Alter)),
        other => relations_of(other, &mut out),
    }
    out
}

/// Why `current` may not depend on `owner`, if it may not.
fn forbidden_reference(layers: &[LayerInfo], current: usize, owner: usize) -> Option<String> {
    let (cur, own) = (&layers[current], &layers[owner]);
    if current == owner || cur.depends_on.contains(&(owner as u16)) {
        return None;
    }
    Some(match cur.kind {
        LayerKind::Core => format!("core must not depend on `{}`", own.id),
        LayerKind::Vertical => format!("vertical `{}` may depend only on core, not on `{}`", cur.id, own.id),
        LayerKind::Bespoke => format!(
            "bespoke layer `{}` may depend only on core and its tenant's vertical, not on `{}`",
            cur.id, own.id
        ),
    })
}

impl Rule for LayerBoundary {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let (Some(stmt), Some(current)) = (cx.stmt.ast(), cx.file.layer) else {
            return;
        };
        let layers = cx.env.layers;
        let current = current as usize;
        if current >= layers.len() {
            return;
        }
        let mut seen = Vec::new();
        for (name, how) in uses(stmt) {
            let q = cx.catalog.resolve(&name);
            if seen.contains(&(q.clone(), how)) {
                continue;
            }
            seen.push((q.clone(), how));
            let known = cx
                .catalog
                .table(&q)
                .map(|t| t.origin.layer)
                .or_else(|| cx.catalog.views.get(&q).map(|v| v.origin.layer));
            let alter_help =
                format!("leave `{q}` to the layer that owns it; keep this layer's additions in its own table keyed by `{q}`'s id");
            let reference_help = "move what several layers need down into the lowest layer they all share (usually core)".to_string();
            let problem = match known {
                Some(owner) => {
                    let owner = owner as usize;
                    match how {
                        Use::Alter if owner != current && owner < layers.len() => Some((
                            format!(
                                "`{}` alters `{q}`, which belongs to `{}`: a layer changes only its own tables",
                                layers[current].id, layers[owner].id
                            ),
                            alter_help,
                        )),
                        Use::Drop if owner != current && owner < layers.len() => Some((
                            format!(
                                "`{}` drops `{q}`, which belongs to `{}`: only the layer that owns an object may drop it",
                                layers[current].id, layers[owner].id
                            ),
                            format!("drop it in `{}` once no tenant of that layer needs it", layers[owner].id),
                        )),
                        _ if owner < layers.len() => {
                            forbidden_reference(layers, current, owner).map(|why| (format!("{why}: `{q}` belongs to it"), reference_help))
                        }
                        _ => None,
                    }
                }
                None => {
                    let owners: Vec<usize> = (0..layers.len())
                        .filter(|&l| l != current && layers[l].objects.contains(&q))
                        .collect();
                    if owners.is_empty() || owners.iter().any(|&o| layers[current].depends_on.contains(&(o as u16))) {
                        None
                    } else {
                        forbidden_reference(layers, current, owners[0]).map(|why| {
                            let all = owners.iter().map(|&o| format!("`{}`", layers[o].id)).collect::<Vec<_>>().join(", ");
                            (format!("{why}: `{q}` is defined only by {all}"), reference_help)
                        })
                    }
                }
            };
            if let Some((message, help)) = problem {
                out.push(
                    Finding::new(name_region(&name).unwrap_or(cx.stmt.region), message)
                        .help(help)
                        .at_statement(cx.index),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws_with, ids, render_rule};

    const TENANTS: &str = "[[tenant]]\nslug = \"dreamlink\"\ndatabase = \"env:DREAMLINK_DATABASE_URL\"\nvertical = \"agency\"\nbespoke = \"dreamlink\"\n\n[[tenant]]\nslug = \"nova\"\ndatabase = \"env:NOVA_DATABASE_URL\"\nvertical = \"travel\"\nbespoke = \"nova\"\n";

    fn fleet(files: &[(&str, &str)]) -> Vec<crate::diag::Diagnostic> {
        check_ws_with(files, |root| std::fs::write(root.join("tenants.toml"), TENANTS).unwrap())
    }

    const CORE: (&str, &str) = (
        "core/0001_contacts.sql",
        "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text);\n",
    );
    const AGENCY: (&str, &str) = (
        "verticals/agency/0001_deals.sql",
        "CREATE TABLE deals (id uuid PRIMARY KEY, client_contact_id uuid REFERENCES contacts (id));\n",
    );
    const TRAVEL: (&str, &str) = ("verticals/travel/0001_trips.sql", "CREATE TABLE trips (id uuid PRIMARY KEY);\n");

    #[test]
    fn fires_on_upward_sideways_and_altering_edges() {
        let d = fleet(&[
            CORE,
            ("core/0002_core_reporting.sql", "CREATE VIEW deal_counts AS SELECT count(*) FROM deals;\n"),
            AGENCY,
            (
                "verticals/agency/0002_trips.sql",
                "CREATE TABLE deal_trips (\n    deal_id uuid REFERENCES deals (id),\n    trip_id uuid REFERENCES trips (id)\n);\nALTER TABLE contacts ADD COLUMN deal_stage text;\n",
            ),
            TRAVEL,
            ("bespoke/dreamlink/0001_views.sql", "CREATE VIEW dreamlink_deals AS SELECT d.id FROM deals AS d;\n"),
            ("bespoke/nova/0001_views.sql", "CREATE VIEW nova_deals AS SELECT * FROM dreamlink_deals;\nDROP TABLE trips;\n"),
        ]);
        assert_eq!(ids(&d, "layer-boundary"), 5, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "layer-boundary"));
    }

    #[test]
    fn a_table_made_like_a_sideways_one_crosses_the_boundary() {
        // Whether sqlparser reads the statement (INCLUDING DEFAULTS) or only
        // PostgreSQL does (INCLUDING ALL, or LIKE beside columns).
        for create in [
            "CREATE TABLE trip_copies (LIKE trips INCLUDING DEFAULTS);\n",
            "CREATE TABLE trip_copies (LIKE trips INCLUDING ALL);\n",
            "CREATE TABLE trip_copies (LIKE trips INCLUDING ALL, copied_at timestamptz);\n",
        ] {
            let d = fleet(&[
                CORE,
                AGENCY,
                TRAVEL,
                ("verticals/agency/0002_copy.sql", create),
                (
                    "bespoke/dreamlink/0001_views.sql",
                    "CREATE VIEW dreamlink_contacts WITH (security_invoker = true) AS SELECT id FROM contacts;\n",
                ),
                (
                    "bespoke/nova/0001_views.sql",
                    "CREATE VIEW nova_contacts WITH (security_invoker = true) AS SELECT id FROM contacts;\n",
                ),
            ]);
            assert_eq!(ids(&d, "layer-boundary"), 1, "{create}{d:#?}");
        }
    }

    #[test]
    fn quiet_on_downward_references() {
        let d = fleet(&[
            CORE,
            AGENCY,
            ("verticals/agency/0002_index.sql", "CREATE INDEX deals_client_idx ON deals (client_contact_id);\nCREATE INDEX contacts_phone_idx ON contacts (phone);\n"),
            TRAVEL,
            (
                "bespoke/dreamlink/0001_views.sql",
                "CREATE VIEW dreamlink_deals WITH (security_invoker = true) AS\n    SELECT d.id, c.phone FROM deals AS d JOIN contacts AS c ON c.id = d.client_contact_id;\n",
            ),
            ("bespoke/nova/0001_views.sql", "CREATE VIEW nova_trips WITH (security_invoker = true) AS SELECT id FROM trips;\n"),
        ]);
        assert_eq!(ids(&d, "layer-boundary"), 0, "{d:#?}");
    }
}
