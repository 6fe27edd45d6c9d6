//! The checklist's template and sign-offs. Sign-offs are only ever inserted: the newest one per
//! environment and item is its state, the earlier ones stay as history.

use super::Database;
use crate::domain::access::Role;
use crate::domain::checklist::{ChecklistEntry, ChecklistItem, SignOff, SignState};
use crate::domain::environment::Environment;
use sqlx::Row;

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} in the checklist").into())
}

/// The template's current items, in order.
pub async fn items(db: &Database) -> Result<Vec<ChecklistItem>, sqlx::Error> {
    let rows = sqlx::query(
        "select id, position, title, owner_role from checklist_items where retired_at is null order by position, id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let role: String = row.try_get("owner_role")?;
            Ok(ChecklistItem {
                id: row.try_get("id")?,
                position: row.try_get("position")?,
                title: row.try_get("title")?,
                owner_role: Role::parse(&role).map_err(|_| corrupt("role"))?,
            })
        })
        .collect()
}

/// An environment's checklist: every current item with its newest sign-off.
pub async fn entries(db: &Database, env: Environment) -> Result<Vec<ChecklistEntry>, sqlx::Error> {
    let items = items(db).await?;
    let rows = sqlx::query(
        "select s.item_id, s.state, s.comment, s.evidence_url, s.signed_by, s.signed_at, counts.n
         from checklist_signoffs s
         join (select item_id, max(id) as newest, count(*) as n from checklist_signoffs
               where environment = $1 group by item_id) counts on s.id = counts.newest",
    )
    .bind(env.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut latest = std::collections::HashMap::new();
    for row in &rows {
        let state: String = row.try_get("state")?;
        let signoff = SignOff {
            state: SignState::parse(&state).ok_or_else(|| corrupt("state"))?,
            comment: row.try_get("comment")?,
            evidence_url: row.try_get("evidence_url")?,
            signed_by: row.try_get("signed_by")?,
            signed_at: row.try_get("signed_at")?,
        };
        latest.insert(row.try_get::<i64, _>("item_id")?, (signoff, row.try_get::<i64, _>("n")?));
    }
    Ok(items
        .into_iter()
        .map(|item| {
            let (latest, signoffs) = match latest.remove(&item.id) {
                Some((signoff, n)) => (Some(signoff), n),
                None => (None, 0),
            };
            ChecklistEntry { item, latest, signoffs }
        })
        .collect())
}

/// Items signed (pass or waived), items failed, and items in all, for `env`.
pub async fn tally(db: &Database, env: Environment) -> Result<(usize, usize, usize), sqlx::Error> {
    let entries = entries(db, env).await?;
    let signed = entries.iter().filter(|e| e.state().is_signed()).count();
    let failed = entries.iter().filter(|e| e.state() == SignState::Fail).count();
    Ok((signed, failed, entries.len()))
}

/// Appends a sign-off of `item` by `signoff.signed_by`, with its audit entry
/// (`checklist.sign`, the comment as the reason); it supersedes the previous one in `env`.
pub async fn sign(
    db: &Database,
    env: Environment,
    item: &ChecklistItem,
    signoff: &SignOff,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "insert into checklist_signoffs (environment, item_id, state, comment, evidence_url, signed_by, signed_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(env.as_str())
    .bind(item.id)
    .bind(signoff.state.as_str())
    .bind(&signoff.comment)
    .bind(&signoff.evidence_url)
    .bind(&signoff.signed_by)
    .bind(signoff.signed_at)
    .execute(&mut *tx)
    .await?;
    super::audit::record_in(
        &mut tx,
        super::audit::Entry {
            actor: &signoff.signed_by,
            action: "checklist.sign",
            environment: Some(env),
            after: Some(serde_json::json!({
                "item": item.id, "title": item.title, "state": signoff.state.as_str(), "evidence": signoff.evidence_url,
            })),
            reason: Some(signoff.comment.as_str()).filter(|c| !c.is_empty()),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await
}

/// Adds an item at the end of the template, with its audit entry (`checklist.add_item`); the
/// console and the CLI both add items through here.
pub async fn add_item(db: &Database, title: &str, owner_role: Role, by: &str) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let position: i64 =
        sqlx::query_scalar("select cast(coalesce(max(position), 0) + 1 as bigint) from checklist_items")
            .fetch_one(&mut *tx)
            .await?;
    let id: i64 = sqlx::query_scalar(
        "insert into checklist_items (position, title, owner_role, created_by, created_at) values ($1, $2, $3, $4, $5)
         returning id",
    )
    .bind(position)
    .bind(title)
    .bind(owner_role.as_str())
    .bind(by)
    .bind(super::now_ms())
    .fetch_one(&mut *tx)
    .await?;
    super::audit::record_in(
        &mut tx,
        super::audit::Entry {
            actor: by,
            action: "checklist.add_item",
            after: Some(serde_json::json!({ "id": id, "title": title, "owner_role": owner_role.as_str() })),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Retires an item from the template (its sign-offs stay), with its audit entry
/// (`checklist.retire_item`). False when there was no such current item.
pub async fn retire_item(db: &Database, id: i64, by: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query("update checklist_items set retired_at = $1 where id = $2 and retired_at is null")
        .bind(super::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::record_in(
        &mut tx,
        super::audit::Entry {
            actor: by,
            action: "checklist.retire_item",
            before: Some(serde_json::json!({ "id": id })),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
