//! Pushed updates and exports for the environment page: `GET /events/{env}` is a server-sent
//! event stream of the page's live figures, sent whenever the control database's mirror changes
//! (a chunk, a state change, a verification, a flag) — whoever made the change, this console or
//! the CLI — and every few seconds while a run is active. `GET /env/{env}/dead-letters.csv`
//! exports rejected rows. `GET /events` tells the overview when anything it shows changed.
//!
//! A stream lives only as long as its session: it is re-checked every few seconds and ends
//! when the session does (sign-out, expiry, idling out, a disabled user). One session holds at
//! most [`STREAMS_PER_SESSION`] streams at once.

use super::state::AppState;
use crate::db::{live, Database};
use crate::domain::environment::Environment;
use crate::domain::health::Health;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Open streams one session may hold: a few tabs' worth.
pub const STREAMS_PER_SESSION: usize = 8;
/// How often a stream checks that its session is still live.
const SESSION_CHECK: Duration = Duration::from_secs(2);

/// Open event streams per session (by the session id's hash), in this process.
#[derive(Default)]
pub struct StreamCount(Mutex<HashMap<String, usize>>);

/// One open stream's place; dropping it (the stream ended or the browser went) frees it.
pub struct StreamSlot {
    count: Arc<StreamCount>,
    key: String,
}

impl StreamCount {
    fn take(self: &Arc<Self>, session: &str) -> Option<StreamSlot> {
        let key = crate::db::api_keys::key_hash(session);
        let mut open = self.0.lock().ok()?;
        let streams = open.entry(key.clone()).or_insert(0);
        if *streams >= STREAMS_PER_SESSION {
            return None;
        }
        *streams += 1;
        Some(StreamSlot { count: Arc::clone(self), key })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.count.0.lock() {
            if let Some(streams) = open.get_mut(&self.key) {
                *streams = streams.saturating_sub(1);
                if *streams == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

/// `stream` as a server-sent event response that ends when the session does, holding one of
/// the session's stream places while it lasts; 429 when the session holds all of them.
fn while_signed_in(
    state: &AppState,
    headers: &HeaderMap,
    stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    let Some(session) = super::auth::session_id(headers, super::auth::cookie_name(&state.security)) else {
        return (StatusCode::UNAUTHORIZED, "sign in first\n").into_response();
    };
    let Some(slot) = state.streams.take(&session) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!("this session already holds {STREAMS_PER_SESSION} live streams; close a tab\n"),
        )
            .into_response();
    };
    let control = state.control.clone();
    let session_gone = async move {
        let _slot = slot;
        loop {
            tokio::time::sleep(SESSION_CHECK).await;
            match crate::db::sessions::user(&control, &session).await {
                Ok(Some(_)) => {}
                Ok(None) => return,
                // an unreadable control database ends nothing: the guard refuses new requests
                Err(error) => tracing::warn!(%error, "cannot re-check a streaming session"),
            }
        }
    };
    Sse::new(stream.take_until(Box::pin(session_gone))).keep_alive(KeepAlive::default()).into_response()
}

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
            Ok(mut view) => {
                view.charts = crate::ui::charts::draw(&view);
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
pub async fn events(State(state): State<AppState>, headers: HeaderMap, Path(env): Path<String>) -> Response {
    let env = match environment(&env) {
        Ok(env) => env,
        Err(refused) => return refused.into_response(),
    };
    let watch =
        Watch { control: state.control.clone(), env, last: None, sent_at: Instant::now(), active: false };
    while_signed_in(&state, &headers, futures::stream::unfold(watch, next_event))
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
    let target = state.targets.get(env);
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
        Err(error) => unreadable(&format!("the {env} database"), &error),
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
        Err(error) => unreadable("the control database", &error),
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

/// Entries the exports read from the control database at a time.
const EXPORT_PAGE: i64 = 500;

/// A 503 for a database that cannot be read: a sentence and an error id, the cause in the log.
fn unreadable(what: &str, error: &dyn std::fmt::Display) -> Response {
    super::unavailable(&format!("cannot read {what}"), what, error)
}

/// One audit entry as a CSV line.
fn audit_csv_line(e: &crate::db::audit::Recorded) -> String {
    let field = crate::engine::dead_letters::csv_field;
    format!(
        "{},{},{},{},{},{},{},{},{}\n",
        e.id,
        e.at,
        crate::domain::format::format_epoch_ms(e.at),
        field(&e.actor),
        field(&e.action),
        field(e.environment.as_deref().unwrap_or("")),
        field(e.before.as_deref().unwrap_or("")),
        field(e.after.as_deref().unwrap_or("")),
        field(e.reason.as_deref().unwrap_or(""))
    )
}

/// The whole audit log, filtered like its page, as CSV (`/audit.csv`) or JSON (`/audit.json`),
/// streamed a page of entries at a time: the log can be long, and a request must not hold it
/// all in memory. A database error after the first page cuts the download off (the browser
/// reports it failed) rather than ending it as if complete.
async fn audit_export(state: &AppState, query: &AuditQuery, json: bool) -> Response {
    use crate::db::audit;
    let filter = match audit::Filter::parse(&query.env, &query.actor, &query.action, &query.from, &query.to) {
        Ok(filter) => filter,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let first = match audit::page_before(&state.control, &filter, None, EXPORT_PAGE).await {
        Ok(first) => first,
        Err(error) => return unreadable("the audit log", &error),
    };
    struct Pages {
        control: Database,
        filter: audit::Filter,
        page: Option<Vec<audit::Recorded>>,
        opened: bool,
        any: bool,
        json: bool,
    }
    let pages =
        Pages { control: state.control.clone(), filter, page: Some(first), opened: false, any: false, json };
    let stream = futures::stream::unfold(pages, |mut pages| async move {
        let page = pages.page.take()?;
        let mut text = String::new();
        if !pages.opened {
            pages.opened = true;
            text.push_str(if pages.json {
                "["
            } else {
                "id,at,time_utc,actor,action,environment,before,after,reason\n"
            });
        }
        for entry in &page {
            if !pages.json {
                text.push_str(&audit_csv_line(entry));
            } else {
                if pages.any {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(entry).unwrap_or_else(|_| "null".to_owned()));
            }
            pages.any = true;
        }
        if let Some(last) = page.last().filter(|_| i64::try_from(page.len()).is_ok_and(|n| n == EXPORT_PAGE))
        {
            match audit::page_before(&pages.control, &pages.filter, Some(last.id), EXPORT_PAGE).await {
                Ok(next) => pages.page = Some(next),
                Err(error) => {
                    crate::db::log_with_id("cannot read the audit log for an export", &error);
                    return Some((Err(std::io::Error::other("the audit log cannot be read")), pages));
                }
            }
        }
        if pages.page.is_none() && pages.json {
            text.push(']');
        }
        Some((Ok::<_, std::io::Error>(text), pages))
    });
    let (kind, name) = if json {
        ("application/json", "audit-log.json")
    } else {
        ("text/csv; charset=utf-8", "audit-log.csv")
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        // fused: the compression layer polls a finished body once more, which an unfold refuses
        axum::body::Body::from_stream(futures::StreamExt::fuse(stream)),
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
    let now = crate::db::now_ms();
    for env in Environment::ALL {
        parts.push(live::fingerprint(control, env).await?);
        // a runner that dies changes nothing in the mirror, but the run's health changes with
        // the clock: the overview hears of that too
        let health = live::history(control, env, 1).await?.first().map(|run| Health::of(run, now));
        parts.push(health.map_or("", |h| h.as_str()).to_owned());
    }
    Ok(parts.join("|"))
}

/// `GET /events`: a `changed` event whenever what the overview shows changed, whoever changed
/// it; the page then re-reads its figures. Nothing is sent for the state the page was rendered
/// with.
pub async fn overview_events(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
    while_signed_in(&state, &headers, stream)
}
