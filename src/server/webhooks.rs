//! Webhooks: each environment's `[[webhooks.<env>]]` hear of what happened there, without
//! anybody watching the page and without the action that caused it waiting for them.
//!
//! Every `serve` process, every second ([`TICK`]):
//!
//! 1. **finds** what happened: audit entries past the `audit` cursor (a flag change, an
//!    emergency stop, a gate override, a failed verification, a checklist item marked failed)
//!    and runs of the mirror that completed, failed, or started to wait or be throttled. Each
//!    becomes one delivery per webhook that wants the event, with its body made then. The
//!    `dedup_key` is unique, so two replicas finding the same event queue it once, and a scan
//!    that overlaps the last one ([`AUDIT_OVERLAP`], [`RUNS_OVERLAP`]) queues nothing twice;
//! 2. **delivers** what is due: claims a delivery (`claimed_until`, so one process sends it),
//!    posts it signed, and records the answer. A 2xx delivers it; a timeout, a refused
//!    connection, a 5xx, 408 or 429 retries after 1 s, 2 s, 4 s … (at most [`MAX_BACKOFF_MS`])
//!    until the webhook's `max_attempts`; any other 4xx gives up at once (the receiver refuses
//!    this request, and sending it again cannot change that).
//!
//! Everything is in the control database, so a restart, or another replica, goes on where
//! the last left off: nothing queued is lost, nothing delivered is sent again.
//!
//! The signature: `X-STI-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
//! with the webhook's secret. The receiver recomputes it and refuses a stale `t` (replays).

use crate::db::Database;
use crate::domain::environment::{Environment, PerEnv};
use crate::domain::format::format_count;
use crate::domain::notifications::{DeliveryState, Event, HookInfo};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// How often each process looks for events and due deliveries.
pub const TICK: Duration = Duration::from_secs(1);
/// How long a receiver has to answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim keeps other processes off a delivery (longer than [`SEND_TIMEOUT`]).
const CLAIM_MS: i64 = 30_000;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 15 * 60 * 1000;
/// Audit ids read again at each scan: an entry whose transaction committed after a later id's
/// is still found.
const AUDIT_OVERLAP: i64 = 200;
/// Run updates read again at each scan (ms): a run mirrored late is still found.
const RUNS_OVERLAP: i64 = 60 * 60 * 1000;

/// What a webhook's body looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"event", "environment", "summary", "at", "details"}`.
    #[default]
    Json,
    /// Slack's incoming webhooks (`text` and `blocks`); Mattermost and others take it too.
    Slack,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
        }
    }
}

/// One configured webhook of an environment (its `Debug` leaves the secret out).
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// What the log and the page call it; unique in its environment.
    pub name: String,
    pub url: String,
    /// Signs every body when set.
    pub secret: Option<String>,
    pub format: Format,
    /// The events it wants, in [`Event::ALL`]'s order.
    pub events: Vec<Event>,
    /// Attempts before a delivery is given up.
    pub max_attempts: i64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .field("format", &self.format)
            .field("events", &self.events)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

/// A webhook as the config file spells it (`[[webhooks.prod]]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    name: Option<String>,
    url: String,
    secret: Option<String>,
    /// The name of an environment variable holding the secret, to keep it out of the file.
    secret_env: Option<String>,
    #[serde(default)]
    format: Format,
    events: Option<Vec<String>>,
    max_attempts: Option<i64>,
}

impl WebhookFile {
    /// The webhook, or why the file's entry cannot be used.
    pub fn resolve(self, vars: &std::collections::BTreeMap<String, String>) -> Result<Webhook, String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url '{}': {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("url '{}' must be http or https", self.url));
        }
        let name = self.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        let name = name.unwrap_or_else(|| url.host_str().unwrap_or("webhook").to_owned());
        let secret = match (self.secret, self.secret_env) {
            (Some(_), Some(_)) => return Err(format!("{name}: give secret or secret_env, not both")),
            (Some(secret), None) => Some(secret),
            (None, Some(var)) => Some(
                vars.get(&var)
                    .filter(|s| !s.is_empty())
                    .cloned()
                    .ok_or_else(|| format!("{name}: secret_env names {var}, which is not set"))?,
            ),
            (None, None) => None,
        };
        let events = match self.events {
            None => Event::ALL.to_vec(),
            Some(names) => {
                let mut events = names
                    .iter()
                    .map(|n| {
                        Event::parse(n.trim()).ok_or_else(|| {
                            let known: Vec<_> = Event::ALL.iter().map(|e| e.as_str()).collect();
                            format!("{name}: unknown event '{n}'; the events are {}", known.join(", "))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                events.sort();
                events.dedup();
                if events.is_empty() {
                    return Err(format!("{name}: events is empty; leave it out for every event"));
                }
                events
            }
        };
        let max_attempts = self.max_attempts.unwrap_or(8);
        if !(1..=50).contains(&max_attempts) {
            return Err(format!("{name}: max_attempts must be between 1 and 50, not {max_attempts}"));
        }
        Ok(Webhook { name, url: url.to_string(), secret, format: self.format, events, max_attempts })
    }
}

/// Every environment's webhooks.
pub type Hooks = Arc<PerEnv<Vec<Webhook>>>;

impl Webhook {
    /// What the environment page shows of it: never its address or secret.
    pub fn info(&self) -> HookInfo {
        HookInfo {
            name: self.name.clone(),
            format: self.format.as_str().to_owned(),
            events: self.events.iter().map(|e| e.as_str().to_owned()).collect(),
            signed: self.secret.is_some(),
        }
    }
}

/// Starts this process's finder and deliverer, if any environment has a webhook.
pub fn start(control: Database, hooks: Hooks) {
    if hooks.iter().all(|(_, h)| h.is_empty()) {
        return;
    }
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("sti-rollout/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "webhooks: cannot make an HTTP client; no notification will be sent");
                return;
            }
        };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(error) = find(&control, &hooks).await {
                tracing::warn!(%error, "webhooks: cannot look for events");
            }
            if let Err(error) = deliver_due(&control, &hooks, &client).await {
                tracing::warn!(%error, "webhooks: cannot deliver");
            }
        }
    });
}

/// One event, ready to be queued for each webhook that wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub event: Event,
    pub environment: Environment,
    /// Unique per event: with the webhook's name, the delivery's `dedup_key`.
    pub key: String,
    pub summary: String,
    pub at_ms: i64,
    pub details: Value,
}

/// Finds events past the cursors and queues their deliveries.
pub async fn find(control: &Database, hooks: &PerEnv<Vec<Webhook>>) -> Result<usize, sqlx::Error> {
    let mut notices = Vec::new();
    let now = crate::db::now_ms();
    let audit_from = cursor(control, "audit", "select coalesce(max(id), 0) from audit_log").await?;
    let entries = sqlx::query(
        "select id, at, actor, action, environment, before, after, reason from audit_log
         where id > $1 and environment is not null order by id limit 1000",
    )
    .bind(audit_from - AUDIT_OVERLAP)
    .fetch_all(control.pool())
    .await?;
    let mut audit_to = audit_from;
    for row in &entries {
        let id: i64 = row.try_get("id")?;
        audit_to = audit_to.max(id);
        let Some(env) =
            row.try_get::<Option<String>, _>("environment")?.and_then(|e| Environment::parse(&e).ok())
        else {
            continue;
        };
        let json = |column: &str| -> Result<Value, sqlx::Error> {
            let text: Option<String> = row.try_get(column)?;
            Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null))
        };
        let entry = AuditRow {
            id,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            before: json("before")?,
            after: json("after")?,
            reason: row.try_get("reason")?,
        };
        notices.extend(from_audit(env, &entry));
    }

    let runs_from = cursor(control, "runs", &format!("select {}", control.dialect().now_ms_sql())).await?;
    let runs = sqlx::query(
        "select environment, run_id, kind, state, error, school_created, self_study_created, school_skipped,
                self_study_skipped, errors, updated_at, hold_kind, hold_reason, hold_since
         from runs where updated_at > $1 order by updated_at",
    )
    .bind(runs_from - RUNS_OVERLAP)
    .fetch_all(control.pool())
    .await?;
    let mut runs_to = runs_from;
    for row in &runs {
        runs_to = runs_to.max(row.try_get("updated_at")?);
        let Ok(env) = Environment::parse(&row.try_get::<String, _>("environment")?) else { continue };
        let run = RunRow {
            id: row.try_get("run_id")?,
            kind: row.try_get("kind")?,
            state: row.try_get("state")?,
            error: row.try_get("error")?,
            created: row.try_get::<i64, _>("school_created")?
                + row.try_get::<i64, _>("self_study_created")?,
            skipped: row.try_get::<i64, _>("school_skipped")?
                + row.try_get::<i64, _>("self_study_skipped")?,
            rejected: row.try_get("errors")?,
            updated_at: row.try_get("updated_at")?,
            hold_kind: row.try_get("hold_kind")?,
            hold_reason: row.try_get("hold_reason")?,
            hold_since: row.try_get("hold_since")?,
        };
        notices.extend(from_run(env, &run));
    }

    let mut queued = 0;
    for notice in &notices {
        for hook in hooks[notice.environment].iter().filter(|h| h.events.contains(&notice.event)) {
            queued += queue(control, hook, notice, now).await?;
        }
    }
    advance(control, "audit", audit_to).await?;
    advance(control, "runs", runs_to).await?;
    Ok(queued)
}

/// A cursor's position; a new cursor starts at `start` (a query), so that what happened before
/// the first webhook was configured is not announced.
async fn cursor(control: &Database, name: &str, start: &str) -> Result<i64, sqlx::Error> {
    if let Some(position) = sqlx::query_scalar("select position from webhook_cursors where name = $1")
        .bind(name)
        .fetch_optional(control.pool())
        .await?
    {
        return Ok(position);
    }
    let start: i64 = sqlx::query_scalar(start).fetch_one(control.pool()).await?;
    sqlx::query("insert into webhook_cursors (name, position) values ($1, $2) on conflict (name) do nothing")
        .bind(name)
        .bind(start)
        .execute(control.pool())
        .await?;
    sqlx::query_scalar("select position from webhook_cursors where name = $1")
        .bind(name)
        .fetch_one(control.pool())
        .await
}

async fn advance(control: &Database, name: &str, to: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update webhook_cursors set position = $2 where name = $1 and position < $2")
        .bind(name)
        .bind(to)
        .execute(control.pool())
        .await?;
    Ok(())
}

/// Queues `notice` for `hook`, unless it already is: 1 if queued now.
async fn queue(control: &Database, hook: &Webhook, notice: &Notice, now: i64) -> Result<usize, sqlx::Error> {
    let dedup_key = format!("{}:{}:{}", notice.environment, hook.name, notice.key);
    // a read first: the scans overlap, and a no-op insert would still take SQLite's write lock
    let known: Option<i64> = sqlx::query_scalar("select id from webhook_deliveries where dedup_key = $1")
        .bind(&dedup_key)
        .fetch_optional(control.pool())
        .await?;
    if known.is_some() {
        return Ok(0);
    }
    let done = sqlx::query(
        "insert into webhook_deliveries (environment, hook, event, dedup_key, summary, body, created_at, next_attempt_at)
         values ($1, $2, $3, $4, $5, $6, $7, $7) on conflict (dedup_key) do nothing",
    )
    .bind(notice.environment.as_str())
    .bind(&hook.name)
    .bind(notice.event.as_str())
    .bind(&dedup_key)
    .bind(&notice.summary)
    .bind(body(hook.format, notice))
    .bind(now)
    .execute(control.pool())
    .await?;
    Ok(done.rows_affected() as usize)
}

/// An audit entry, as [`from_audit`] reads it.
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub before: Value,
    pub after: Value,
    pub reason: Option<String>,
}

/// The event an audit entry is, if it is one.
pub fn from_audit(env: Environment, entry: &AuditRow) -> Option<Notice> {
    let actor = entry.actor.as_str();
    let because = entry.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let (event, summary) = match entry.action.as_str() {
        "flag.set" => {
            let on = entry.after["enabled"].as_bool()?;
            if entry.before["enabled"].as_bool() == Some(on) {
                return None;
            }
            let state = if on { "on" } else { "off" };
            (Event::FlagChanged, format!("{env}: ENABLE_STI turned {state} by {actor}{because}"))
        }
        "emergency_stop" => {
            let run = entry.after["cancel_requested"]
                .as_i64()
                .map(|r| format!(", run #{r} cancelling"))
                .unwrap_or_default();
            (Event::EmergencyStop, format!("{env}: EMERGENCY STOP by {actor}{because} (ENABLE_STI off{run})"))
        }
        "gate.override" => {
            let gate = entry.before["gate"].as_str().unwrap_or("a gate");
            let closed = entry.before["closed"].as_str().unwrap_or("closed");
            (Event::GateOverridden, format!("{env}: {actor} overrode the gate of {gate} ({closed}){because}"))
        }
        "verify" if entry.after["ok"].as_bool() == Some(false) => {
            let ranges = entry.after["mismatched_ranges"].as_i64().unwrap_or(0);
            let ids = entry.after["mismatched_ids"].as_i64().unwrap_or(0);
            (
                Event::VerificationFailed,
                format!(
                    "{env}: verification by {actor} failed: {} mismatched ranges, {} mismatched ids",
                    format_count(ranges),
                    format_count(ids)
                ),
            )
        }
        "checklist.sign" if entry.after["state"].as_str() == Some("fail") => {
            let title = entry.after["title"].as_str().unwrap_or("an item");
            (
                Event::ChecklistFailed,
                format!("{env}: checklist item \"{title}\" marked failed by {actor}{because}"),
            )
        }
        _ => return None,
    };
    Some(Notice {
        event,
        environment: env,
        key: format!("audit:{}", entry.id),
        summary,
        at_ms: entry.at,
        details: json!({
            "actor": actor, "action": entry.action, "before": entry.before, "after": entry.after, "reason": entry.reason,
        }),
    })
}

/// A mirrored run, as [`from_run`] reads it.
pub struct RunRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub error: Option<String>,
    pub created: i64,
    pub skipped: i64,
    pub rejected: i64,
    pub updated_at: i64,
    pub hold_kind: Option<String>,
    pub hold_reason: Option<String>,
    pub hold_since: Option<i64>,
}

/// The events a run is: its end, and the hold it is in (one per hold: a run that waits twice
/// is announced twice).
pub fn from_run(env: Environment, run: &RunRow) -> Vec<Notice> {
    let mut notices = Vec::new();
    let name = format!("{} #{}", run.kind, run.id);
    let details = json!({
        "run": run.id, "kind": run.kind, "state": run.state, "created": run.created, "skipped": run.skipped,
        "rejected": run.rejected, "error": run.error, "hold": run.hold_kind, "hold_reason": run.hold_reason,
    });
    let mut notice = |event: Event, key: String, summary: String, at_ms: i64| {
        notices.push(Notice { event, environment: env, key, summary, at_ms, details: details.clone() });
    };
    match run.state.as_str() {
        "completed" => notice(
            Event::RunCompleted,
            format!("run:{}:completed", run.id),
            format!(
                "{env}: {name} completed: {} created, {} skipped, {} rejected",
                format_count(run.created),
                format_count(run.skipped),
                format_count(run.rejected)
            ),
            run.updated_at,
        ),
        "failed" => notice(
            Event::RunFailed,
            format!("run:{}:failed", run.id),
            format!("{env}: {name} failed: {}", run.error.as_deref().unwrap_or("no error recorded")),
            run.updated_at,
        ),
        "running" => {
            if let (Some(kind), Some(since)) = (run.hold_kind.as_deref(), run.hold_since) {
                let reason = run.hold_reason.as_deref().unwrap_or("no reason recorded");
                match kind {
                    "waiting" => notice(
                        Event::RunWaiting,
                        format!("run:{}:waiting:{since}", run.id),
                        format!("{env}: {name} is waiting out a fault of its database: {reason}"),
                        since,
                    ),
                    "throttled" => notice(
                        Event::RunThrottled,
                        format!("run:{}:throttled:{since}", run.id),
                        format!("{env}: {name} is throttled: {reason}"),
                        since,
                    ),
                    _ => {}
                }
            }
        }
        _ => {}
    }
    notices
}

/// The body `format` gives `notice`.
pub fn body(format: Format, notice: &Notice) -> String {
    let at = crate::domain::format::format_epoch_ms(notice.at_ms);
    let value = match format {
        Format::Json => json!({
            "event": notice.event.as_str(),
            "environment": notice.environment.as_str(),
            "summary": notice.summary,
            "at": at,
            "at_ms": notice.at_ms,
            "details": notice.details,
        }),
        Format::Slack => json!({
            "text": notice.summary,
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn",
                    "text": format!("*{}* · `{}`\n{}", notice.environment, notice.event.as_str(), notice.summary) } },
                { "type": "context", "elements": [ { "type": "mrkdwn",
                    "text": format!("STI Rollout Console · {at} · /env/{}", notice.environment) } ] },
            ],
        }),
    };
    value.to_string()
}

/// `X-STI-Signature`'s value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("t={timestamp},v1={}", crate::db::hex(&mac.finalize().into_bytes()))
}

/// The wait before attempt `attempts + 1`, after `attempts` failed ones: 1 s, 2 s, 4 s … at most
/// [`MAX_BACKOFF_MS`].
pub fn backoff_ms(attempts: i64) -> i64 {
    let exponent = attempts.clamp(1, 30) - 1;
    (1000_i64 << exponent).min(MAX_BACKOFF_MS)
}

/// Sends every delivery that is due, a few at a time.
pub async fn deliver_due(
    control: &Database,
    hooks: &PerEnv<Vec<Webhook>>,
    client: &reqwest::Client,
) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    loop {
        let mut batch = Vec::new();
        while batch.len() < 8 {
            match claim(control).await? {
                Some(claimed) => batch.push(claimed),
                None => break,
            }
        }
        if batch.is_empty() {
            return Ok(sent);
        }
        sent += batch.len();
        let results = futures::future::join_all(
            batch.into_iter().map(|claimed| attempt(control, hooks, client, claimed)),
        )
        .await;
        for result in results {
            result?;
        }
    }
}

/// A delivery this process claimed.
struct Claimed {
    id: i64,
    environment: String,
    hook: String,
    event: String,
    body: String,
    attempts: i64,
}

async fn claim(control: &Database) -> Result<Option<Claimed>, sqlx::Error> {
    let now = crate::db::now_ms();
    let free = "(claimed_until is null or claimed_until < $1)";
    let row = sqlx::query(&format!(
        "update webhook_deliveries set claimed_until = $2
         where id = (select id from webhook_deliveries
                     where state = 'pending' and next_attempt_at <= $1 and {free} order by id limit 1)
           and state = 'pending' and {free}
         returning id, environment, hook, event, body, attempts"
    ))
    .bind(now)
    .bind(now + CLAIM_MS)
    .fetch_optional(control.pool())
    .await?;
    row.map(|r| {
        Ok(Claimed {
            id: r.try_get("id")?,
            environment: r.try_get("environment")?,
            hook: r.try_get("hook")?,
            event: r.try_get("event")?,
            body: r.try_get("body")?,
            attempts: r.try_get("attempts")?,
        })
    })
    .transpose()
}

/// What one attempt came to.
enum Outcome {
    Delivered(u16),
    Retry { status: Option<u16>, error: String },
    GiveUp { status: Option<u16>, error: String },
}

async fn attempt(
    control: &Database,
    hooks: &PerEnv<Vec<Webhook>>,
    client: &reqwest::Client,
    claimed: Claimed,
) -> Result<(), sqlx::Error> {
    let hook = Environment::parse(&claimed.environment)
        .ok()
        .and_then(|env| hooks[env].iter().find(|h| h.name == claimed.hook));
    let outcome = match hook {
        None => Outcome::GiveUp {
            status: None,
            error: format!("no webhook {} in {}'s configuration any more", claimed.hook, claimed.environment),
        },
        Some(hook) => send(client, hook, &claimed).await,
    };
    let attempts = claimed.attempts + 1;
    let max = hook.map_or(1, |h| h.max_attempts);
    let now = crate::db::now_ms();
    let (state, status, error, next) = match outcome {
        Outcome::Delivered(status) => (DeliveryState::Delivered, Some(status), None, now),
        Outcome::Retry { status, error } if attempts < max => {
            (DeliveryState::Pending, status, Some(error), now + backoff_ms(attempts))
        }
        Outcome::Retry { status, error } => {
            (DeliveryState::Failed, status, Some(format!("{error}; gave up after {attempts} attempts")), now)
        }
        Outcome::GiveUp { status, error } => {
            (DeliveryState::Failed, status, Some(format!("{error}; not retried")), now)
        }
    };
    {
        let span = tracing::info_span!("webhook", id = claimed.id, hook = %claimed.hook, event = %claimed.event, attempts);
        let _in = span.enter();
        let error = error.as_deref().unwrap_or_default();
        match state {
            DeliveryState::Delivered => tracing::info!("webhook delivered"),
            DeliveryState::Pending => tracing::warn!(error, "webhook not delivered; will retry"),
            DeliveryState::Failed => tracing::error!(error, "webhook given up"),
        }
    }
    let finished = (state != DeliveryState::Pending).then_some(now);
    sqlx::query(
        "update webhook_deliveries set state = $2, attempts = $3, last_status = $4, last_error = $5,
                next_attempt_at = $6, finished_at = $7, claimed_until = null
         where id = $1",
    )
    .bind(claimed.id)
    .bind(state.as_str())
    .bind(attempts)
    .bind(status.map(i64::from))
    .bind(error)
    .bind(next)
    .bind(finished)
    .execute(control.pool())
    .await?;
    Ok(())
}

async fn send(client: &reqwest::Client, hook: &Webhook, claimed: &Claimed) -> Outcome {
    let timestamp = crate::db::now_ms() / 1000;
    let mut request = client
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-STI-Event", &claimed.event)
        .header("X-STI-Delivery", claimed.id.to_string())
        .header("X-STI-Timestamp", timestamp.to_string())
        .body(claimed.body.clone());
    if let Some(secret) = &hook.secret {
        request = request.header("X-STI-Signature", signature(secret, timestamp, &claimed.body));
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let code = status.as_u16();
            if status.is_success() {
                Outcome::Delivered(code)
            } else if status.is_server_error() || matches!(code, 408 | 429) {
                Outcome::Retry { status: Some(code), error: format!("the receiver answered {status}") }
            } else {
                Outcome::GiveUp { status: Some(code), error: format!("the receiver answered {status}") }
            }
        }
        Err(error) => {
            let what = if error.is_timeout() {
                format!("no answer within {} s", SEND_TIMEOUT.as_secs())
            } else if error.is_connect() {
                "cannot connect to the receiver".to_owned()
            } else {
                format!("the request failed: {error}")
            };
            Outcome::Retry { status: None, error: what }
        }
    }
}

#[cfg(test)]
mod tests;
