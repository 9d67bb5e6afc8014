//! The privileges a move needs, checked by its preflight: each missing one
//! is named with the SQL that grants it.

use tokio_postgres::Client;

use super::plan::Table;
use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::{quote_ident, Target};

/// Superuser, REPLICATION, CREATE on the current database, server_version_num.
async fn role_facts(client: &Client, t: &Target) -> Result<(bool, bool, bool, u32)> {
    let r = client
        .query_one(
            "SELECT rolsuper::text, rolreplication::text, has_database_privilege(current_database(), 'CREATE')::text, \
                    current_setting('server_version_num') FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::Pg(sql_error(t, "reading the role's privileges")(e)))?;
    let get = |i: usize| r.try_get::<_, String>(i).unwrap_or_default();
    Ok((
        get(0) == "true",
        get(1) == "true",
        get(2) == "true",
        get(3).parse::<u32>().unwrap_or(0),
    ))
}

/// What the roles of a move lack, each with the SQL that grants it:
/// on the source, REPLICATION (the slot, the subscription's connection),
/// ownership of the published tables and CREATE on the database (CREATE
/// PUBLICATION); on the target, CREATE SUBSCRIPTION: superuser before
/// PostgreSQL 16, membership in pg_create_subscription and CREATE on the
/// database from 16 on.
pub async fn move_privileges(src: &Client, source: &Target, dst: &Client, target: &Target, tables: &[Table]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let (src_super, src_repl, src_create, _) = role_facts(src, source).await?;
    let (user, db) = (quote_ident(source.user()), quote_ident(source.dbname()));
    if !src_super {
        if !src_repl {
            problems.push(format!(
                "the source role {} lacks REPLICATION (the replication slot and the subscription's connection need it): \
                 ALTER ROLE {user} REPLICATION (as a superuser; hosted services grant it their own way, e.g. rds_replication)",
                source.user()
            ));
        }
        if !src_create {
            problems.push(format!(
                "the source role {} lacks CREATE on database {} (CREATE PUBLICATION needs it): GRANT CREATE ON DATABASE {db} TO {user}",
                source.user(),
                source.dbname()
            ));
        }
        for t in tables {
            let owner = src
                .query_opt(
                    "SELECT pg_get_userbyid(relowner)::text, pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass($1)",
                    &[&t.qualified()],
                )
                .await
                .map_err(|e| Error::Pg(sql_error(source, format!("reading the owner of {}", t.display()))(e)))?;
            if let Some(r) = owner {
                if !r.try_get::<_, bool>(1).unwrap_or(false) {
                    problems.push(format!(
                        "source table {} is owned by {}, not by {} (CREATE PUBLICATION ... FOR TABLE needs ownership): \
                         GRANT {} TO {user}",
                        t.display(),
                        r.try_get::<_, String>(0).unwrap_or_default(),
                        source.user(),
                        quote_ident(&r.try_get::<_, String>(0).unwrap_or_default())
                    ));
                }
            }
        }
    }
    let (dst_super, _, dst_create, version) = role_facts(dst, target).await?;
    let (tuser, tdb) = (quote_ident(target.user()), quote_ident(target.dbname()));
    if !dst_super {
        if version < 160_000 {
            problems.push(format!(
                "the target role {} is not a superuser: PostgreSQL {} allows CREATE SUBSCRIPTION to superusers only \
                 (PostgreSQL 16 adds the pg_create_subscription role): ALTER ROLE {tuser} SUPERUSER, or move to a target on 16 or newer",
                target.user(),
                version / 10_000
            ));
        } else {
            let member = dst
                .query_one("SELECT pg_has_role(current_user, 'pg_create_subscription', 'MEMBER')", &[])
                .await
                .map_err(|e| Error::Pg(sql_error(target, "reading role memberships")(e)))?
                .try_get::<_, bool>(0)
                .unwrap_or(false);
            if !member {
                problems.push(format!(
                    "the target role {} is not a member of pg_create_subscription (CREATE SUBSCRIPTION needs it): \
                     GRANT pg_create_subscription TO {tuser}",
                    target.user()
                ));
            }
            if !dst_create {
                problems.push(format!(
                    "the target role {} lacks CREATE on database {} (CREATE SUBSCRIPTION needs it): GRANT CREATE ON DATABASE {tdb} TO {tuser}",
                    target.user(),
                    target.dbname()
                ));
            }
        }
    }
    Ok(problems)
}
