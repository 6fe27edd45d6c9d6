//! The rights a PostgreSQL target's roles hold, against what each needs (`migrate --plan` says
//! what is missing; SQLite has no roles). The engine's role — the one in the environment's URL,
//! which runs `migrate` — owns the subtype and bookkeeping tables and installs the capture; an
//! application's role needs only what it uses itself on `projects` and the subtype tables (the
//! capture's function runs with the engine's rights).

use crate::db::pool::{Database, DbError, Dialect};

/// What the engine's role does on `projects`, and the privilege each needs.
const ON_PROJECTS: [(&str, &str); 3] = [
    ("SELECT", "the backfill reads it"),
    ("TRIGGER", "the change capture is a trigger on it"),
    ("REFERENCES", "the subtype tables' foreign keys point to it"),
];

/// The engine's own tables and the subtype tables: it alters their keys and triggers, which
/// needs their ownership.
const OWNED: [&str; 6] = [
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
        "select cast(current_user as text), cast(rolsuper as boolean) from pg_roles where rolname = current_user",
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
        for (privilege, why) in ON_PROJECTS {
            let held: bool = sqlx::query_scalar("select has_table_privilege(current_user, 'projects', $1)")
                .bind(privilege)
                .fetch_one(db.pool())
                .await?;
            if !held {
                missing.push(format!(
                    "the engine's role {engine} lacks {privilege} on projects ({why}): grant {} on projects to {engine}",
                    privilege.to_lowercase()
                ));
            }
        }
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
            let owns: bool = sqlx::query_scalar(
                "select pg_has_role(current_user, c.relowner, 'USAGE') from pg_class c where c.oid = to_regclass($1)",
            )
            .bind(table)
            .fetch_one(db.pool())
            .await?;
            if !owns {
                missing.push(format!(
                    "the engine's role {engine} does not own {table} (it alters its keys and triggers): \
                     alter table {table} owner to {engine}"
                ));
            }
        }
    }
    // the application's roles: whoever may write projects writes the subtype tables in STI mode
    if exists("school_projects").await? && exists("self_study_projects").await? {
        let writers: Vec<String> = sqlx::query_scalar(
            "select cast(r.rolname as text) from pg_roles r
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
