//! The rights a PostgreSQL target's roles hold, against what each needs (`migrate --plan` says
//! what is missing; SQLite has no roles). The engine's role — the one in the environment's URL,
//! which runs `migrate` — owns `projects`, the subtype and the bookkeeping tables (it is the role
//! that runs the application's migrations) and installs the capture; an
//! application's role needs only what it uses itself on `projects` and the subtype tables (the
//! capture's function runs with the engine's rights).

use crate::db::pool::{Database, DbError, Dialect};

/// The tables the engine's role must own: it installs and removes the capture's trigger on
/// `projects` (dropping a trigger, and the brief `lock table` that orders its locks, take the
/// owner's rights), and it alters the subtype tables' keys and triggers; its own tables are
/// created by `migrate` as that role.
const OWNED: [&str; 7] = [
    "projects",
    "school_projects",
    "self_study_projects",
    "sti_backfill_runs",
    "sti_backfill_chunks",
    "sti_backfill_slices",
    "sti_backfill_dead_letters",
];

/// Each right missing, as a sentence that names the grant that mends it; empty when every role
/// holds what it needs.
pub async fn missing(db: &Database) -> Result<Vec<String>, DbError> {
    if db.dialect() != Dialect::Postgres {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    let (engine, superuser): (String, bool) = sqlx::query_as(
        "select cast(quote_ident(current_user) as text), cast(rolsuper as boolean) from pg_roles where rolname = current_user",
    )
    .fetch_one(db.pool())
    .await?;
    let exists = |table: &'static str| async move {
        sqlx::query_scalar::<_, bool>("select to_regclass($1) is not null")
            .bind(table)
            .fetch_one(db.pool())
            .await
    };
    if !superuser {
        let create: bool =
            sqlx::query_scalar("select has_schema_privilege(current_user, current_schema(), 'CREATE')")
                .fetch_one(db.pool())
                .await?;
        if !create {
            missing.push(format!(
                "the engine's role {engine} cannot create in the target's schema (migrate's tables, the capture's \
                 functions): grant create on schema to {engine}"
            ));
        }
        for table in OWNED {
            if !exists(table).await? {
                continue;
            }
            let owner: Option<String> = sqlx::query_scalar(
                "select cast(pg_get_userbyid(c.relowner) as text) from pg_class c
                 where c.oid = to_regclass($1) and not pg_has_role(current_user, c.relowner, 'USAGE')",
            )
            .bind(table)
            .fetch_optional(db.pool())
            .await?;
            if let Some(owner) = owner {
                missing.push(format!(
                    "the engine's role {engine} does not own {table} (owner: {owner}), and it installs triggers and \
                     alters keys there: connect as the role that owns the application's tables, or grant {owner} to {engine}"
                ));
            }
        }
    }
    // the application's roles: whoever may write projects writes the subtype tables in STI mode
    if exists("projects").await? && exists("school_projects").await? && exists("self_study_projects").await? {
        let writers: Vec<String> = sqlx::query_scalar(
            "select cast(quote_ident(r.rolname) as text) from pg_roles r
             where r.rolcanlogin and not r.rolsuper and r.rolname <> current_user
               and (has_table_privilege(r.oid, 'projects', 'INSERT')
                    or has_table_privilege(r.oid, 'projects', 'UPDATE')
                    or has_table_privilege(r.oid, 'projects', 'DELETE'))
               and exists (
                   -- a privilege list means any of them: each one is asked alone
                   select 1 from unnest(array['school_projects', 'self_study_projects']) t,
                                 unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
                   where not has_table_privilege(r.oid, t, p))
             order by 1",
        )
        .fetch_all(db.pool())
        .await?;
        for role in writers {
            missing.push(format!(
                "the application's role {role} writes projects but not both subtype tables, which it writes with \
                 ENABLE_STI on: grant select, insert, update, delete on school_projects, self_study_projects to {role}"
            ));
        }
    }
    Ok(missing)
}
