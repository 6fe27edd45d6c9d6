//! Pushed updates and exports for the environment page: `GET /events/{env}` is a server-sent
//! event stream of the page's live figures, sent whenever the control database's mirror changes
//! (a chunk, a state change, a verification, a flag) — whoever made the change, this console or
//! the CLI — and every few seconds while a run is active. `GET /env/{env}/dead-letters.csv`
//! exports rejected rows. `GET /events` tells the overview when anything it shows changed.

use super::state::AppState;
use crate::db::{live, Database};
use crate::domain::environment::Environment;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// How often the stream looks for changes: well under the one second a chunk may take to show.
const POLL: Duration = Duration::from_millis(200);
/// How often an active run is re-sent even when nothing changed, so a runner that went silent
/// shows as such.
const HEARTBEAT: Duration = Duration::from_secs(5);

struct Watch {
    control: Database,
    env: Environment,
    last: Option<String>,
    sent_at: Instant,
    active: bool,
}

async fn next_event(mut watch: Watch) -> Option<(Result<Event, Infallible>, Watch)> {
    let mut first = watch.last.is_none();
    loop {
        if !first {
            tokio::time::sleep(POLL).await;
        }
        first = false;
        let fingerprint = match live::fingerprint(&watch.control, watch.env).await {
            Ok(fingerprint) => fingerprint,
            Err(error) => {
                tracing::warn!(%error, environment = %watch.env, "cannot read the control database for live updates");
                continue;
            }
        };
        let stale = watch.active && watch.sent_at.elapsed() >= HEARTBEAT;
        if watch.last.as_ref() == Some(&fingerprint) && !stale {
            continue;
        }
        match live::read(&watch.control, watch.env).await {
            Ok(view) => {
                watch.active = view.run.as_ref().is_some_and(|r| r.is_active());
                watch.last = Some(fingerprint);
                watch.sent_at = Instant::now();
                let event = Event::default().event("live").json_data(&view).unwrap_or_else(|error| {
                    Event::default().event("error").data(format!("cannot encode the update: {error}"))
                });
                return Some((Ok(event), watch));
            }
            Err(error) => tracing::warn!(%error, environment = %watch.env, "cannot read live figures"),
        }
    }
}

fn environment(name: &str) -> Result<Environment, (StatusCode, String)> {
    Environment::parse(name).map_err(|e| (StatusCode::NOT_FOUND, format!("{e}\n")))
}

/// The live stream of one environment. Browsers reconnect by themselves when it drops.
pub async fn events(State(state): State<AppState>, Path(env): Path<String>) -> Response {
    let env = match environment(&env) {
        Ok(env) => env,
        Err(refused) => return refused.into_response(),
    };
    let watch =
        Watch { control: state.control.clone(), env, last: None, sent_at: Instant::now(), active: false };
    let stream = futures::stream::unfold(watch, next_event);
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

#[derive(Deserialize)]
pub struct DeadLetterFilter {
    reason: Option<String>,
    run: Option<i64>,
}

/// Rejected rows as CSV, filtered like the page.
pub async fn dead_letters_csv(
    State(state): State<AppState>,
    Path(env): Path<String>,
    Query(filter): Query<DeadLetterFilter>,
) -> Response {
    let env = match environment(&env) {
        Ok(env) => env,
        Err(refused) => return refused.into_response(),
    };
    let Some(target) = state.targets.get(env) else {
        return (StatusCode::NOT_FOUND, "no such environment\n").into_response();
    };
    let reason = filter.reason.filter(|r| !r.is_empty());
    match crate::engine::dead_letters::csv(target, reason.as_deref(), filter.run).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{env}-dead-letters.csv\"")),
            ],
            csv,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, environment = %env, "cannot export dead letters");
            (StatusCode::SERVICE_UNAVAILABLE, format!("the {env} database cannot be read: {error}\n"))
                .into_response()
        }
    }
}

/// One run's chunk ledger as CSV, from the control database's mirror.
pub async fn ledger_csv(State(state): State<AppState>, Path((env, run_id)): Path<(String, i64)>) -> Response {
    let env = match environment(&env) {
        Ok(env) => env,
        Err(refused) => return refused.into_response(),
    };
    match live::chunks(&state.control, env, run_id).await {
        Ok(chunks) => {
            let mut csv = String::from(
                "chunk_no,from_id,to_id,rows_read,school_created,self_study_created,errors,duration_ms,committed_at\n",
            );
            for c in chunks {
                csv.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    c.chunk_no,
                    c.from_id,
                    c.to_id,
                    c.rows_read,
                    c.school_created,
                    c.self_study_created,
                    c.errors,
                    c.duration_ms,
                    c.committed_at
                ));
            }
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{env}-run-{run_id}-ledger.csv\""),
                    ),
                ],
                csv,
            )
                .into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot export a ledger");
            (StatusCode::SERVICE_UNAVAILABLE, "the control database cannot be read\n").into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    env: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The whole audit log, filtered like its page, as CSV (`/audit.csv`) or JSON (`/audit.json`).
async fn audit_export(state: &AppState, query: &AuditQuery, json: bool) -> Response {
    let filter = match crate::db::audit::Filter::parse(
        &query.env,
        &query.actor,
        &query.action,
        &query.from,
        &query.to,
    ) {
        Ok(filter) => filter,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let entries = match crate::db::audit::search(&state.control, &filter, i64::MAX, 0).await {
        Ok((entries, _)) => entries,
        Err(error) => {
            tracing::error!(%error, "cannot export the audit log");
            return (StatusCode::SERVICE_UNAVAILABLE, "the control database cannot be read\n")
                .into_response();
        }
    };
    if json {
        return (
            [(header::CONTENT_DISPOSITION, "attachment; filename=\"audit-log.json\"".to_owned())],
            axum::Json(entries),
        )
            .into_response();
    }
    let field = crate::engine::dead_letters::csv_field;
    let mut csv = String::from("id,at,time_utc,actor,action,environment,before,after,reason\n");
    for e in entries {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            e.id,
            e.at,
            crate::domain::live::format_epoch_ms(e.at),
            field(&e.actor),
            field(&e.action),
            field(e.environment.as_deref().unwrap_or("")),
            field(e.before.as_deref().unwrap_or("")),
            field(e.after.as_deref().unwrap_or("")),
            field(e.reason.as_deref().unwrap_or(""))
        ));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit-log.csv\"".to_owned()),
        ],
        csv,
    )
        .into_response()
}

pub async fn audit_csv(State(state): State<AppState>, Query(query): Query<AuditQuery>) -> Response {
    audit_export(&state, &query, false).await
}

pub async fn audit_json(State(state): State<AppState>, Query(query): Query<AuditQuery>) -> Response {
    audit_export(&state, &query, true).await
}

/// At most one overview update a second: each makes the page re-read every environment's counts.
const OVERVIEW_EVERY: Duration = Duration::from_secs(1);

/// What the overview shows changed anywhere: every environment's live fingerprint (runs,
/// verifications, flags, and the newest audit entry — sign-offs, the D-day).
async fn overview_fingerprint(control: &Database) -> Result<String, sqlx::Error> {
    let mut parts = Vec::new();
    for env in Environment::ALL {
        parts.push(live::fingerprint(control, env).await?);
    }
    Ok(parts.join("|"))
}

/// `GET /events`: a `changed` event whenever what the overview shows changed, whoever changed
/// it; the page then re-reads its figures. Nothing is sent for the state the page was rendered
/// with.
pub async fn overview_events(State(state): State<AppState>) -> Response {
    let control = state.control.clone();
    let start = overview_fingerprint(&control).await.ok();
    let stream = futures::stream::unfold((control, start), |(control, mut last)| async move {
        loop {
            tokio::time::sleep(OVERVIEW_EVERY).await;
            match overview_fingerprint(&control).await {
                Ok(now) if last.as_ref() != Some(&now) => {
                    last = Some(now);
                    let event = Event::default().event("changed").data("overview");
                    return Some((Ok::<_, Infallible>(event), (control, last)));
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "cannot read the control database for overview updates"),
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
