//! The operator's controls: dry-run, start, pause, resume, cancel, take over, pacing, the
//! rollback plan, reconcile and the emergency stop, each behind its confirmation.

use super::reports::{DryRunResult, RollbackPlanView};
use crate::api::environment::{control_run, dry_run, emergency_stop, pace_run, plan_rollback, start_run};
use crate::domain::access::Role;
use crate::domain::environment::Environment;
use crate::domain::forecast::paced_seconds;
use crate::domain::format::{capitalised, format_count, format_duration};
use crate::domain::live::{LiveView, RunView, Stopped};
use crate::domain::next_step::{of_live, Action as NextAction};
use crate::domain::pacing::{Pacing, DEFAULT_CHUNK, MAX_CHUNK, MAX_PAUSE_MS, MIN_CHUNK};
use crate::domain::reports::DryRunReport;
use crate::domain::run::continues_after;
use crate::domain::run::{RunKind, RunRequest, RunState};
use crate::ui::components::confirm::{Confirm, ConfirmIds};
use crate::ui::components::flash::{report, report_failure, report_success, sentence, Flash};
use leptos::either::Either;
use leptos::prelude::*;

const IDS: ConfirmIds = ConfirmIds {
    dialog: "confirm",
    reason: "stop-reason",
    name: "confirm-name",
    yes: "confirm-yes",
    no: "confirm-no",
};

/// Where a backfill started now begins, as the engine decides it ([`continues_after`]) from the
/// newest run over a key range.
fn begins(view: &LiveView) -> String {
    let newest = view.history.iter().find(|r| r.kind != RunKind::Reconcile);
    match continues_after(RunKind::Backfill, newest.map(|r| (r.kind, r.state, r.checkpoint))) {
        Some(after) => format!(
            "It continues after id {}, failed run #{}'s checkpoint: what it committed stays.",
            format_count(after),
            newest.map_or(0, |r| r.id)
        ),
        None => "It starts from the first id; rows already copied are skipped.".to_owned(),
    }
}

/// How long a backfill with the pacing entered takes, from the dry-run's rows and rate.
fn lasts(report: Option<&DryRunReport>, chunk: i64, pause: i64) -> String {
    match report.filter(|r| r.rows_per_second > 0.0 && chunk > 0) {
        Some(r) => format!(
            "With {}-row chunks and {} ms pauses it takes about {} ({} rows at {} rows/s, {}).",
            format_count(chunk),
            format_count(pause.max(0)),
            format_duration(paced_seconds(r.rows_read, r.rows_per_second, chunk, pause)),
            format_count(r.rows_read),
            format_count(r.rows_per_second.round() as i64),
            r.estimate_basis
        ),
        None => "A dry-run first says how long it takes.".to_owned(),
    }
}

/// What an operator is about to confirm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pending {
    Start(RunKind),
    /// Take over the active run whose runner is gone: it goes on after `checkpoint`.
    TakeOver {
        run: i64,
        kind: RunKind,
        checkpoint: i64,
    },
    Stop,
}

/// The operator's controls, each offered only when the run's state allows it.
#[component]
pub(super) fn RunControls(
    env: Environment,
    live: RwSignal<LiveView>,
    role: Role,
    flash: Flash,
    max_workers: i64,
    asked: super::next::Asked,
) -> impl IntoView {
    let chunk = RwSignal::new(DEFAULT_CHUNK.to_string());
    let pause = RwSignal::new("0".to_owned());
    let workers = RwSignal::new("1".to_owned());
    let confirming: RwSignal<Option<Pending>> = RwSignal::new(None);
    let reason = RwSignal::new(String::new());
    let override_reason = RwSignal::new(String::new());
    let number = |s: RwSignal<String>| s.get_untracked().trim().parse::<i64>().unwrap_or(-1);
    // what the server would refuse, said beside the form before any confirmation
    let invalid = move || -> Option<String> {
        let read = |s: RwSignal<String>| s.read().trim().parse::<i64>().unwrap_or(-1);
        if let Err(error) = Pacing::parse(read(chunk), read(pause), None) {
            return Some(capitalised(&error.to_string()) + ".");
        }
        match read(workers) {
            1 => None,
            _ if max_workers == 1 => {
                Some("This target is SQLite: one writer, so a backfill runs with 1 worker.".to_owned())
            }
            w if !(1..=max_workers).contains(&w) => {
                Some(format!("Workers must be between 1 and {max_workers}."))
            }
            _ => None,
        }
    };

    let start = Action::new(
        move |(kind, chunk, pause, confirm, over, workers): &(RunKind, i64, i64, String, String, i64)| {
            let over = Some(over.clone()).filter(|o| !o.trim().is_empty());
            start_run(env.to_string(), *kind, *chunk, *pause, confirm.clone(), over, Some(*workers))
        },
    );
    let dry = Action::new(move |(chunk, pause): &(i64, i64)| dry_run(env.to_string(), *chunk, Some(*pause)));
    let plan = Action::new(move |_: &()| plan_rollback(env.to_string()));
    let request = Action::new(move |(run, req): &(i64, RunRequest)| control_run(env.to_string(), *run, *req));
    let pace = Action::new(move |(run, chunk, pause): &(i64, i64, i64)| {
        pace_run(env.to_string(), *run, *chunk, *pause)
    });
    let stop = Action::new(move |(confirm, reason): &(String, String)| {
        emergency_stop(env.to_string(), confirm.clone(), reason.clone())
    });

    // a take-over answers with the run it took: it is said as such, not as a new start
    let took_over: RwSignal<Option<i64>> = RwSignal::new(None);
    // a refused start keeps its confirmation open with the sentence beside it
    report_success(start, flash, move |id| match took_over.get_untracked() {
        Some(run) if run == *id => format!("Run #{id} taken over: it goes on after its checkpoint."),
        _ => format!("Run #{id} started."),
    });
    report_failure(dry, flash);
    report(request, flash, |_| "Asked; the run acts at its next chunk boundary.".into());
    report(pace, flash, |_| "New pacing from the next chunk on.".into());
    report(stop, flash, |stopped| Stopped::describe(stopped, "; "));

    let active = move || live.read().run.clone().filter(RunView::is_active);
    // the newest dry-run: as the audit log keeps it (who, when: it stays after a reload), else the
    // one just answered, until the push that follows it arrives
    let last_dry = move || match live.read().last_dry_run.clone() {
        Some(kept) => Some((kept.report, Some((kept.actor, kept.at)))),
        None => dry.value().get().and_then(Result::ok).map(|report| (report, None)),
    };
    // the next step's button, carried out here
    Effect::new(move |_| {
        use super::next::take;
        let run = live.read_untracked().run.clone().filter(RunView::is_active);
        if take(asked, NextAction::DryRun) {
            dry.dispatch((number(chunk), number(pause)));
        } else if take(asked, NextAction::StartBackfill) {
            confirming.set(Some(Pending::Start(RunKind::Backfill)));
        } else if take(asked, NextAction::Reconcile) {
            confirming.set(Some(Pending::Start(RunKind::Reconcile)));
        } else if take(asked, NextAction::Resume) {
            if let Some(run) = run {
                request.dispatch((run.id, RunRequest::Resume));
            }
        } else if take(asked, NextAction::Pause) {
            if let Some(run) = run {
                request.dispatch((run.id, RunRequest::Pause));
            }
        } else if take(asked, NextAction::EmergencyStop) {
            confirming.set(Some(Pending::Stop));
        } else if take(asked, NextAction::TakeOver) {
            if let Some(run) = run {
                confirming.set(Some(Pending::TakeOver {
                    run: run.id,
                    kind: run.kind,
                    checkpoint: run.checkpoint,
                }));
            }
        }
    });
    let next_is = move |action: NextAction| of_live(&live.read()).action == Some(action);
    let busy = move || {
        start.pending().get() || dry.pending().get() || request.pending().get() || pace.pending().get()
    };
    let confirm = move |typed: String| {
        // a take-over starts a run of its kind, which takes the dead one over
        let starting = match confirming.get_untracked() {
            Some(Pending::TakeOver { run, kind, .. }) => Some((kind, Some(run))),
            Some(Pending::Start(kind)) => Some((kind, None)),
            _ => None,
        };
        if let Some((kind, taking)) = starting {
            took_over.set(taking);
            if kind == RunKind::Rollback {
                // the plan said what a rollback would delete: once one starts, it says nothing
                plan.value().set(None);
            }
            // a reconcile runs as one loop
            let workers = if kind == RunKind::Backfill { number(workers) } else { 1 };
            start.dispatch((
                kind,
                number(chunk),
                number(pause),
                typed,
                override_reason.get_untracked(),
                workers,
            ));
            // the confirmation stays until the answer: closed once started, kept with the
            // refusal beside it if not
            return;
        } else if confirming.get_untracked() == Some(Pending::Stop) {
            stop.dispatch((typed, reason.get_untracked()));
        }
        confirming.set(None);
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = start.value().get() {
            confirming.set(None);
        }
    });
    // a new question clears the last refusal
    Effect::new(move |previous: Option<bool>| {
        let open = confirming.read().is_some();
        if open && previous == Some(false) {
            start.value().set(None);
        }
        open
    });

    view! {
        <section class="card controls" aria-labelledby="controls-heading">
            <div class="controls-head">
                <h2 id="controls-heading">"Controls"</h2>
                <button class="button button-danger" data-testid="emergency-stop" on:click=move |_| confirming.set(Some(Pending::Stop))>
                    "Emergency stop"
                </button>
            </div>
            {move || match active() {
                None => Either::Left(view! {
                    {move || live.read().gate_closed.clone().map(|reason| view! {
                        <div class="notice notice-warn" role="status" data-testid="gate">
                            <span><strong>"Gate closed: "</strong>{reason}</span>
                        </div>
                        {(role == Role::Admin).then(|| view! {
                            <div class="control-row">
                                <label>"Override the gate because… (audited)"<input class="wide" data-testid="gate-override" prop:value=override_reason on:input=move |e| override_reason.set(event_target_value(&e))/></label>
                            </div>
                        })}
                    })}
                    <div class="control-row">
                        <label>"Chunk size"<input type="number" min=MIN_CHUNK max=MAX_CHUNK data-testid="chunk" prop:value=chunk on:input=move |e| chunk.set(event_target_value(&e))/></label>
                        <label>"Pause between chunks (ms)"<input type="number" min="0" max=MAX_PAUSE_MS data-testid="pause" prop:value=pause on:input=move |e| pause.set(event_target_value(&e))/></label>
                        <label title="Parallel workers on each console replica (PostgreSQL targets)">"Workers"<input type="number" min="1" max=max_workers data-testid="workers" prop:value=workers on:input=move |e| workers.set(event_target_value(&e))/></label>
                        <button class=move || if next_is(NextAction::DryRun) { "button button-primary" } else { "button" } data-testid="dry-run" disabled=move || busy() || invalid().is_some() on:click=move |_| { dry.dispatch((number(chunk), number(pause))); }>
                            {move || if dry.pending().get() { "Dry-running…" } else { "Dry-run" }}
                        </button>
                        <button class=move || if next_is(NextAction::StartBackfill) { "button button-primary" } else { "button" } data-testid="start"
                            disabled=move || busy() || invalid().is_some() || (live.read().gate_closed.is_some() && override_reason.read().trim().is_empty())
                            on:click=move |_| confirming.set(Some(Pending::Start(RunKind::Backfill)))>
                            "Start backfill…"
                        </button>
                        <button class="button" data-testid="plan-rollback" disabled=busy on:click=move |_| { plan.dispatch(()); }>
                            {move || if plan.pending().get() { "Planning…" } else { "Plan rollback" }}
                        </button>
                        {move || live.read().verification.clone().filter(|v| !v.ok && !v.mismatched_ids.is_empty()).map(|v| view! {
                            <button class="button" data-testid="reconcile" disabled=busy
                                title="Re-copy exactly the ids the last verification found different"
                                on:click=move |_| confirming.set(Some(Pending::Start(RunKind::Reconcile)))>
                                {format!("Reconcile {} ids…", format_count(v.mismatched_ids.len() as i64))}
                            </button>
                        })}
                    </div>
                    {move || invalid().map(|why| view! { <p class="field-error" role="alert" data-testid="start-invalid">{why}</p> })}
                }),
                Some(run) => {
                    let id = run.id;
                    let gone = run.runner_gone(live.read_untracked().read_at);
                    let kind = run.kind;
                    let checkpoint = run.checkpoint;
                    Either::Right(view! {
                        <div class="control-row">
                            {(run.state == RunState::Running).then(|| view! {
                                <button class="button" data-testid="pause-run" disabled=busy on:click=move |_| { request.dispatch((id, RunRequest::Pause)); }>"Pause"</button>
                            })}
                            {(run.state == RunState::Paused).then(|| view! {
                                <button class="button button-primary" data-testid="resume-run" disabled=busy on:click=move |_| { request.dispatch((id, RunRequest::Resume)); }>"Resume"</button>
                            })}
                            <button class="button button-danger" data-testid="cancel-run" disabled=busy on:click=move |_| { request.dispatch((id, RunRequest::Cancel)); }>"Cancel run"</button>
                            {gone.then(|| view! {
                                <button class="button button-primary" data-testid="take-over" disabled=busy on:click=move |_| confirming.set(Some(Pending::TakeOver { run: id, kind, checkpoint }))>
                                    {format!("Take over run #{id}…")}
                                </button>
                            })}
                        </div>
                        <div class="control-row">
                            <label>"Chunk size"<input type="number" min=MIN_CHUNK max=MAX_CHUNK data-testid="pace-chunk" prop:value=run.chunk_size.to_string() on:input=move |e| chunk.set(event_target_value(&e))/></label>
                            <label>"Pause (ms)"<input type="number" min="0" max=MAX_PAUSE_MS data-testid="pace-pause" prop:value=run.pause_ms.to_string() on:input=move |e| pause.set(event_target_value(&e))/></label>
                            <button class="button" data-testid="apply-pace" disabled=busy on:click=move |_| { pace.dispatch((id, number(chunk), number(pause))); }>"Apply pacing"</button>
                        </div>
                    })
                }
            }}
            {move || confirming.get().map(|pending| {
                let what = match pending {
                    Pending::Start(RunKind::Backfill) => format!(
                        "Start a live backfill in {env}? It writes to the subtype tables. {} {}",
                        begins(&live.read_untracked()),
                        lasts(last_dry().map(|(report, _)| report).as_ref(), number(chunk), number(pause))
                    ),
                    Pending::Start(RunKind::Rollback) => format!("Roll back in {env}? This deletes every subtype row the backfill created there."),
                    Pending::Start(RunKind::Reconcile) => format!("Reconcile {env}? This re-copies the ids the last verification found different, then verify again."),
                    Pending::TakeOver { run, kind, checkpoint } => format!(
                        "Take over {} run #{run} in {env}? Its runner is gone; this console goes on with it after id {}, its checkpoint: nothing committed is done again.",
                        kind.as_str(),
                        format_count(checkpoint)
                    ),
                    Pending::Stop => format!("Emergency stop in {env}: cancel the active run and turn ENABLE_STI off."),
                };
                let stopping = pending == Pending::Stop;
                view! {
                    <Confirm
                        text=what
                        ids=IDS
                        reason=stopping.then_some(reason)
                        reason_required=stopping
                        type_to_confirm=(env == Environment::Prod).then(|| env.to_string())
                        yes_label="Confirm"
                        on_yes=Callback::new(confirm)
                        on_no=Callback::new(move |()| confirming.set(None))
                    />
                    {move || start.value().get().and_then(Result::err).filter(|_| !stopping).map(|e| view! {
                        <p class="field-error" role="alert" data-testid="start-refused">{sentence(&e)}</p>
                    })}
                }
            })}
            {move || last_dry().map(|(report, by)| view! { <DryRunResult report by/> })}
            {move || plan.value().get().map(|result| match result {
                Ok((plan, refused)) => Either::Left(view! { <RollbackPlanView plan refused confirming/> }),
                Err(error) => Either::Right(view! { <div class="notice notice-error" role="alert">{error.to_string()}</div> }),
            })}
        </section>
    }
}
