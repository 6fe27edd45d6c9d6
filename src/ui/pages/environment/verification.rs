//! The verification card and the rejected rows, a page at a time.

use crate::api::environment::{dead_letters, verify_environment};
use crate::domain::environment::Environment;
use crate::domain::format::{format_count, format_duration, format_epoch_ms};
use crate::domain::live::{DeadLetterPage, LiveView, RunView, VerificationView};
use crate::domain::next_step::{of_live, Action as NextAction};
use crate::ui::components::async_view::ErrorNotice;
use crate::ui::components::flash::{report, Flash};
use leptos::either::Either;
use leptos::prelude::*;

#[component]
pub(super) fn VerificationCard(
    env: Environment,
    live: RwSignal<LiveView>,
    operator: bool,
    flash: Flash,
    asked: super::next::Asked,
) -> impl IntoView {
    let verify = Action::new(move |_: &()| verify_environment(env.to_string()));
    Effect::new(move |_| {
        if super::next::take(asked, NextAction::Verify) {
            verify.dispatch(());
        }
    });
    let next_is_verify = move || of_live(&live.read()).action == Some(NextAction::Verify);
    report(verify, flash, |v: &VerificationView| {
        if v.ok {
            "Verified: every range matches.".into()
        } else {
            format!("Verification found {} ranges that differ.", v.mismatched_ranges)
        }
    });
    let running = move || live.read().run.as_ref().is_some_and(RunView::is_active);
    view! {
        <div class="controls-head">
            <h2 id="verify-heading">"Verification"</h2>
            {operator.then(|| view! {
                <button class=move || if next_is_verify() { "button button-primary" } else { "button" } data-testid="verify" disabled=move || verify.pending().get() || running()
                    title="Compares legacy rows with the subtype rows, range by range"
                    on:click=move |_| { verify.dispatch(()); }>
                    {move || if verify.pending().get() { "Verifying…" } else { "Verify" }}
                </button>
            })}
        </div>
        {move || match live.get().verification {
            None => Either::Left(view! { <p class="empty" data-testid="verification">"Not verified yet."</p> }),
            Some(v) => Either::Right(view! {
                <div data-testid="verification">
                    {v.outdated_by(&live.read().history).map(|run| view! {
                        <p class="notice notice-warn" role="status" data-testid="verification-outdated">
                            {format!("Out of date: {} run #{} {} after this verification; verify again.", run.kind.as_str(), run.id,
                                if run.is_active() { "is going" } else { "ended" })}
                        </p>
                    })}
                    <p>
                        <span class=if v.ok { "badge badge-on" } else { "badge badge-off" }>{if v.ok { "matches" } else { "MISMATCH" }}</span>
                        {format!(" {} ranges of 10 000 ids checked in {} · {}", format_count(v.ranges), format_duration(v.duration_ms as f64 / 1000.0), format_epoch_ms(v.created_at))}
                    </p>
                    <table class="table">
                        <thead><tr><th>""</th><th>"Legacy rows"</th><th>"Subtype rows"</th></tr></thead>
                        <tbody>
                            <tr><td>"School"</td><td>{format_count(v.legacy_school)}</td><td>{format_count(v.school_rows)}</td></tr>
                            <tr><td>"Self-study"</td><td>{format_count(v.legacy_self_study)}</td><td>{format_count(v.self_study_rows)}</td></tr>
                        </tbody>
                    </table>
                    {(!v.mismatched_ids.is_empty()).then(|| view! {
                        <p class="mismatch">{format!("{} ranges differ; first ids: {}", v.mismatched_ranges,
                            v.mismatched_ids.iter().take(50).map(ToString::to_string).collect::<Vec<_>>().join(", "))}</p>
                    })}
                </div>
            }),
        }}
    }
}

/// The rejected rows, a page at a time, filterable by reason. The first page comes with the
/// page's props; later ones are read when the filter, the page or the run changes. (Not a
/// resource: one created in the island would be serialized into the page again for each render
/// of the view the island sits in.)
#[component]
pub(super) fn DeadLetters(
    env: Environment,
    live: RwSignal<LiveView>,
    first: Result<DeadLetterPage, String>,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let run = RwSignal::new(None::<i64>);
    let page_no = RwSignal::new(1_i64);
    let shown = RwSignal::new(first);
    // refetched when a run starts, ends or rejects more rows
    let run_key = Memo::new(move |_| live.with(|l| l.run.as_ref().map(|r| (r.id, r.state, r.errors))));
    Effect::new(move |previous: Option<()>| {
        let key = (reason.get(), run.get(), page_no.get(), run_key.get());
        if previous.is_none() {
            return; // what the page came with is current
        }
        leptos::task::spawn_local(async move {
            let result = dead_letters(env.to_string(), Some(key.0.clone()), key.1, key.2).await;
            // an answer to a question no longer asked is dropped
            if (reason.get_untracked(), run.get_untracked(), page_no.get_untracked(), run_key.get_untracked())
                == key
            {
                shown.set(result.map_err(|e| e.to_string()));
            }
        });
    });
    let csv = move || {
        let mut query = Vec::new();
        let r = reason.get();
        if !r.is_empty() {
            query.push(format!("reason={r}"));
        }
        if let Some(n) = run.get() {
            query.push(format!("run={n}"));
        }
        match query.is_empty() {
            true => format!("/env/{env}/dead-letters.csv"),
            false => format!("/env/{env}/dead-letters.csv?{}", query.join("&")),
        }
    };
    view! {
        <div class="controls-head">
            <h2 id="dead-heading">"Rejected rows"</h2>
            <a class="button" href=csv download data-testid="dead-letters-csv">"Export CSV"</a>
        </div>
        {move || match shown.get() {
            Err(message) => Either::Left(view! { <ErrorNotice message/> }),
            Ok(page) => Either::Right(dead_letter_table(page, reason, run, page_no)),
        }}
    }
}

/// One page of rejected rows with its filter and pager.
fn dead_letter_table(
    page: DeadLetterPage,
    reason: RwSignal<String>,
    run: RwSignal<Option<i64>>,
    page_no: RwSignal<i64>,
) -> impl IntoView {
    let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
    let current = page.page;
    let chosen = reason.get_untracked();
    let chosen_run = run.get_untracked();
    view! {
        <div class="filters">
        <label class="filter">"Reason "
            <select data-testid="reason-filter" on:change=move |e| { reason.set(event_target_value(&e)); page_no.set(1); }>
                <option value="" selected=chosen.is_empty()>"all"</option>
                {page.reasons.into_iter().map(|(r, n)| {
                    let selected = r == chosen;
                    view! { <option value=r.clone() selected=selected>{format!("{r} ({})", format_count(n))}</option> }
                }).collect_view()}
            </select>
        </label>
        <label class="filter">"Run "
            <select data-testid="run-filter" on:change=move |e| { run.set(event_target_value(&e).parse().ok()); page_no.set(1); }>
                <option value="" selected=chosen_run.is_none()>"all"</option>
                {page.runs.into_iter().map(|(r, n)| {
                    view! { <option value=r.to_string() selected=chosen_run == Some(r)>{format!("#{r} ({})", format_count(n))}</option> }
                }).collect_view()}
            </select>
        </label>
        </div>
        {if page.rows.is_empty() {
            Either::Left(view! { <p class="empty" data-testid="dead-letters-empty">"No rejected rows."</p> })
        } else {
            Either::Right(view! {
                <table class="table" data-testid="dead-letters">
                    <thead><tr><th>"Project id"</th><th>"Reason"</th><th>"Seen in runs"</th></tr></thead>
                    <tbody>
                        {page.rows.into_iter().map(|d| view! {
                            <tr><td>{d.project_id}</td><td><code>{d.reason.clone()}</code></td><td>{d.runs_text()}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })
        }}
        <div class="pager">
            {(pages > 1).then(|| view! {
                <button class="button" disabled={current <= 1} on:click=move |_| page_no.update(|p| *p = (*p - 1).max(1))>"Previous"</button>
            })}
            <span data-testid="dead-letters-page">{format!("page {current} of {pages} · {} rows", format_count(page.total))}</span>
            {(pages > 1).then(|| view! {
                <button class="button" disabled={current >= pages} on:click=move |_| page_no.update(|p| *p += 1)>"Next"</button>
            })}
        </div>
    }
}
