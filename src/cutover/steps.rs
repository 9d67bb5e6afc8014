//! The phased plan of a cutover: every step with what it does, the gate it
//! must pass and how it is undone. `strata plan` prints it; the executor
//! runs the same list, so what is printed is what runs.

use serde::Serialize;

use super::plan::{format_duration, Cutover, Kind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Preflight,
    Expand,
    DualWrite,
    FlipReaders,
    FlipWriters,
    Contract,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Expand => "expand",
            Phase::DualWrite => "dual-write",
            Phase::FlipReaders => "flip-readers",
            Phase::FlipWriters => "flip-writers",
            Phase::Contract => "contract",
        }
    }
}

/// What a step does when run (the executor matches on it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Preflight,
    Expand,
    DualWrite,
    Backfill,
    /// `move` with `[identity]`: legacy users linked to contacts, message senders resolved.
    Identity,
    Verify,
    FlipReader {
        worker: String,
    },
    FlipWriters,
    Contract,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Stable id: `expand`, `backfill`, `flip-reader:inbox`, ... (`--until` takes it).
    pub id: String,
    pub phase: Phase,
    #[serde(flatten)]
    pub action: Action,
    pub does: String,
    pub gate: String,
    pub rollback: String,
}

/// The steps of `cutover`, in order.
pub fn steps(c: &Cutover) -> Vec<Step> {
    match c.file.kind {
        Kind::Reshape => reshape_steps(c),
        Kind::Move => move_steps(c),
    }
}

fn step(id: impl Into<String>, phase: Phase, action: Action, does: String, gate: impl Into<String>, rollback: impl Into<String>) -> Step {
    Step {
        id: id.into(),
        phase,
        action,
        does,
        gate: gate.into(),
        rollback: rollback.into(),
    }
}

fn column_summary(c: &Cutover) -> String {
    c.tables
        .iter()
        .map(|t| {
            let cols: Vec<String> = t
                .changes
                .iter()
                .map(|ch| match &ch.replaces {
                    Some(old) => format!("{old} → {}", ch.new),
                    None => format!("+{}", ch.new),
                })
                .chain(t.drop.iter().map(|d| format!("-{d}")))
                .collect();
            let mut s = t.display();
            if (&t.target_schema, &t.target_name) != (&t.schema, &t.name) {
                s.push_str(&format!(" → {}.{}", t.target_schema, t.target_name));
            }
            if !cols.is_empty() {
                s.push_str(&format!(" ({})", cols.join(", ")));
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn reader_flips(c: &Cutover, gate: &str, steps: &mut Vec<Step>) {
    let soak = format_duration(c.settings.soak);
    for w in &c.file.flip.workers {
        steps.push(step(
            format!("flip-reader:{w}"),
            Phase::FlipReaders,
            Action::FlipReader { worker: w.clone() },
            format!("set the route of worker {w} to read the new shape (strata.worker_routes), then soak {soak}"),
            gate,
            format!("route {w} back to the old shape"),
        ));
    }
}

fn writers(c: &Cutover) -> String {
    if c.file.flip.workers.is_empty() {
        "the writers (no workers listed)".to_string()
    } else {
        c.file.flip.workers.join(", ")
    }
}

fn flips(c: &Cutover, steps: &mut Vec<Step>) {
    let gate = format!("after the soak, verification still within {} rows", c.file.gates.max_row_difference);
    reader_flips(c, &gate, steps);
    steps.push(step(
        "flip-writers",
        Phase::FlipWriters,
        Action::FlipWriters,
        format!("route the writes of {} to the new shape; the retention window starts", writers(c)),
        "every reader flipped and soaked",
        "route writes back to the old shape (dual-write keeps the old side current)",
    ));
}

fn reshape_steps(c: &Cutover) -> Vec<Step> {
    let s = &c.settings;
    let lt = &s.lock_timeout;
    let mut steps = vec![
        step(
            "preflight",
            Phase::Preflight,
            Action::Preflight,
            format!(
                "connect to each tenant database; check the tables and the old columns exist and each key can be walked \
                 (a unique btree index on exactly its columns, NOT NULL){}: {}",
                if c.file.migration.is_some() {
                    "; the carrying migration is the tenant's next one in its layer"
                } else {
                    ""
                },
                column_summary(c)
            ),
            "every table and column present, every key usable",
            "nothing to undo",
        ),
        step(
            "expand",
            Phase::Expand,
            Action::Expand,
            format!("add the new columns (nullable) and the backfill marker; lock_timeout {lt} on every statement"),
            "DDL committed",
            "drop the new columns and the marker",
        ),
        step(
            "dual-write",
            Phase::DualWrite,
            Action::DualWrite,
            "install the dual-write trigger: writes to the old columns fill the new ones (up), writes to the new ones fill the old \
             ones (down)"
                .into(),
            "trigger installed on every table",
            "drop the trigger and its function",
        ),
        step(
            "backfill",
            Phase::DualWrite,
            Action::Backfill,
            format!(
                "keyset batches of {} rows ({} pause) in the key's index order, through rows still marked as needing backfill, up \
                 to the largest key at start; rows done of the table's estimate, rate and ETA shown",
                s.batch_size,
                format_duration(s.pause)
            ),
            "no row left marked",
            "nothing to undo (the new columns go with expand's rollback)",
        ),
        step(
            "verify",
            Phase::DualWrite,
            Action::Verify,
            format!(
                "compare old and new on every row: counts and chunked checksums ({} rows a chunk)",
                s.batch_size
            ),
            format!("at most {} differing rows", c.file.gates.max_row_difference),
            "nothing to undo",
        ),
    ];
    flips(c, &mut steps);
    let drops: Vec<String> = c
        .tables
        .iter()
        .flat_map(|t| {
            t.changes
                .iter()
                .filter_map(|ch| ch.replaces.clone())
                .chain(t.drop.iter().cloned())
                .map(move |col| format!("{}.{col}", t.name))
        })
        .collect();
    let record = match &c.file.migration {
        Some(m) => format!("; record {m} (the migration carrying the new shape) as applied in the tenant's history"),
        None => "; no `migration` names the migration carrying the new shape: `strata drift` will report the tenant".into(),
    };
    steps.push(step(
        "contract",
        Phase::Contract,
        Action::Contract,
        format!("drop the trigger, the marker and the old columns ({}){record}", drops.join(", ")),
        format!(
            "every earlier step done and its gate passed; {} since the writers flipped",
            format_duration(s.retention)
        ),
        "none: irreversible",
    ));
    steps
}

fn move_steps(c: &Cutover) -> Vec<Step> {
    let staging = c.file.staging_schema.clone().unwrap_or_else(|| "strata_staging".into());
    let lag = format_duration(c.settings.max_replication_lag);
    let rows = c.file.gates.max_row_difference;
    let mut steps = vec![
        step(
            "preflight",
            Phase::Preflight,
            Action::Preflight,
            "connect to source and target; wal_level = logical, a free replication slot and a REPLICATION role on the source; \
             the run's publication, slot and subscription names (strata_<cutover>_<run id>) free on both servers; every source \
             table has a primary key or replica identity; every target table exists, is empty, has a unique key of the same \
             columns and the new columns"
                .into(),
            "all checks pass",
            "nothing to undo",
        ),
        step(
            "expand",
            Phase::Expand,
            Action::Expand,
            format!(
                "on the target: tables keeping their name get the source's old-named columns they lack and a replica trigger \
                 computing the new columns; renamed tables get a staging table of the source's name whose replica trigger \
                 upserts into them; trigger functions in {staging}: {}",
                column_summary(c)
            ),
            "DDL committed",
            format!("drop the added columns, staging tables, triggers and functions (and {staging} if strata created it)"),
        ),
        step(
            "dual-write",
            Phase::DualWrite,
            Action::DualWrite,
            "publication on the source (column lists from PostgreSQL 15 on, whole tables before: dropped columns never leave \
             the source), a logical slot \
             (pg_create_logical_replication_slot), a subscription on the target (create_slot = false, copy_data = true)"
                .into(),
            "publication, slot and subscription exist",
            "drop the subscription, the slot and the publication; empty the target tables (in foreign-key order, only the \
             cutover's own)",
        ),
        step(
            "backfill",
            Phase::DualWrite,
            Action::Backfill,
            "wait for the subscription's initial copy (pg_subscription_rel), reporting rows copied of the source's estimate, rate \
             and ETA"
                .into(),
            "every table synchronised (state r), no sync or apply error",
            "nothing to undo (the rows go with dual-write's rollback)",
        ),
    ];
    if let Some(id) = &c.file.identity {
        steps.push(step(
            "identity",
            Phase::DualWrite,
            Action::Identity,
            format!(
                "link the source's legacy users ({}) to the target's contacts ({}): phone in E.164, then Slack id, then a name of \
                 exactly one contact, else a new contact; record the links in strata.identity_links; set the contact_id of the \
                 target's messages whose sender resolves (the rest keep contact_id NULL and sender_name); print the link report; \
                 runs again when the writers flip",
                id.users.table, id.contacts.table
            ),
            "one transaction committed",
            "the new contacts and links stay (they are canonical rows); the replicated rows go with dual-write's rollback",
        ));
    }
    steps.extend([step(
        "verify",
        Phase::DualWrite,
        Action::Verify,
        format!(
            "replication lag (time until the target confirms a WAL probe); row counts and chunked checksums of the mapped \
                 source rows vs the target ({} rows a chunk), differing rows compared again once replication caught up",
            c.settings.batch_size
        ),
        format!(
            "source and target reachable, lag under {lag}, retained WAL under {}, at most {rows} differing rows",
            super::plan::format_size(c.settings.max_retained_wal)
        ),
        "nothing to undo",
    )]);
    reader_flips(
        c,
        &format!("after the soak, lag under {lag} and at most {rows} differing rows"),
        &mut steps,
    );
    steps.push(step(
        "flip-writers",
        Phase::FlipWriters,
        Action::FlipWriters,
        format!(
            "set the target's key sequences past the source's; route the writes of {} to the target; wait until the target \
             has applied everything the slot holds; drop the subscription, the slot and the publication; the retention window \
             starts",
            writers(c)
        ),
        "every reader flipped and passed its gate; the source's slot drained",
        "none: rollback is refused from here (rows written on the target would be lost)",
    ));
    steps.push(step(
        "contract",
        Phase::Contract,
        Action::Contract,
        format!(
            "drop the old-named columns, staging tables, replica triggers and functions on the target (and {staging} if strata \
             created it); the source tables are left for the operator to drop"
        ),
        format!(
            "every earlier step done and its gate passed; {} since the writers flipped",
            format_duration(c.settings.retention)
        ),
        "none: irreversible",
    ));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn move_plan_runs_the_same_ids_and_refuses_rollback_after_the_writers() {
        let c = super::super::plan::parse(
            Path::new("nova-move.toml"),
            "kind = \"move\"\nsource = \"env:S\"\ntarget = \"env:T\"\nretention = \"1d\"\n[flip]\nworkers = [\"inbox\"]\n\
             [[table]]\nname = \"knowledge\"\ntarget = \"knowledge_items\"\n",
        )
        .unwrap();
        let all = steps(&c);
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "preflight",
                "expand",
                "dual-write",
                "backfill",
                "verify",
                "flip-reader:inbox",
                "flip-writers",
                "contract"
            ]
        );
        assert!(all[6].rollback.contains("refused"), "{}", all[6].rollback);
        assert!(all[2].does.contains("create_slot = false"), "{}", all[2].does);
    }

    #[test]
    fn identity_runs_after_the_initial_copy_of_a_move_and_is_refused_in_a_reshape() {
        let c = super::super::plan::parse(
            Path::new("nova-move.toml"),
            "kind = \"move\"\nsource = \"env:S\"\ntarget = \"env:T\"\nretention = \"1d\"\n[[table]]\nname = \"messages\"\n\
             [identity]\ndefault_country = \"DE\"\n",
        )
        .unwrap();
        let ids: Vec<String> = steps(&c).into_iter().map(|s| s.id).collect();
        assert_eq!(ids[3..6], ["backfill", "identity", "verify"]);
        assert_eq!(c.file.identity.as_ref().unwrap().default_country, "DE");
        let e = super::super::plan::parse(
            Path::new("rename-body.toml"),
            "kind = \"reshape\"\nretention = \"1d\"\n[[table]]\nname = \"messages\"\nrename = { body = \"text\" }\n[identity]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`identity` is for `move`"), "{e}");
    }

    #[test]
    fn reshape_plan_has_every_phase_in_order() {
        let c = super::super::plan::parse(
            Path::new("rename-body.toml"),
            "kind = \"reshape\"\nretention = \"1d\"\n[flip]\nworkers = [\"inbox\", \"digest\"]\n[[table]]\nname = \"messages\"\n\
             rename = { body = \"text\" }\n",
        )
        .unwrap();
        let ids: Vec<String> = steps(&c).into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "preflight",
                "expand",
                "dual-write",
                "backfill",
                "verify",
                "flip-reader:inbox",
                "flip-reader:digest",
                "flip-writers",
                "contract"
            ]
        );
        let contract = steps(&c).pop().unwrap();
        assert!(contract.does.contains("messages.body"), "{}", contract.does);
        assert!(contract.gate.contains("1d since the writers flipped"), "{}", contract.gate);
    }
}
