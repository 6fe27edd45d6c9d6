//! What a dry-run would do, and what a rollback would delete: reports that write nothing.

use super::controls::Pending;
use crate::domain::format::{format_count, format_duration, format_epoch_ms};
use crate::domain::reports::{DryRunReport, RollbackPlan};
use crate::domain::run::RunKind;
use leptos::either::Either;
use leptos::prelude::*;

#[component]
pub(super) fn DryRunResult(report: DryRunReport, by: Option<(String, i64)>) -> impl IntoView {
    view! {
        <div class="report" data-testid="dry-run-report">
            <h3>{format!("Dry-run over ids ({}, {}] — nothing written", format_count(report.low_id), format_count(report.high_id))}</h3>
            {by.map(|(actor, at)| view! {
                <p class="muted" data-testid="dry-run-by">{format!("Run by {actor} · {}", format_epoch_ms(at))}</p>
            })}
            <dl class="run-figures">
                <div><dt>"Would create"</dt><dd data-testid="would-create">{format_count(report.would_create.school + report.would_create.self_study)}</dd></div>
                <div><dt>"School / self-study"</dt><dd>{format!("{} / {}", format_count(report.would_create.school), format_count(report.would_create.self_study))}</dd></div>
                <div><dt>"Would skip"</dt><dd>{format_count(report.would_skip.school + report.would_skip.self_study)}</dd></div>
                <div><dt>"Would reject"</dt><dd data-testid="would-reject">{format_count(report.would_reject)}</dd></div>
                <div><dt>"Live run, about"</dt><dd>{format_duration(report.estimated_live_seconds)}</dd></div>
            </dl>
            <p class="read-at">
                {report.reasons.iter().map(|(r, n)| format!("{r}: {}", format_count(*n))).collect::<Vec<_>>().join(" · ")}
            </p>
        </div>
    }
}

#[component]
pub(super) fn RollbackPlanView(
    plan: RollbackPlan,
    refused: Option<String>,
    confirming: RwSignal<Option<Pending>>,
) -> impl IntoView {
    let total = plan.school + plan.self_study;
    view! {
        <div class="report" data-testid="rollback-plan">
            <h3>"Rollback dry-run — nothing deleted"</h3>
            <p>{format!(
                "Would delete {} rows ({} school, {} self-study) created by backfills; would keep {} rows the application wrote.",
                format_count(total), format_count(plan.school), format_count(plan.self_study), format_count(plan.kept)
            )}</p>
            {match refused {
                Some(reason) => Either::Left(view! { <div class="notice notice-error" role="alert">{reason}</div> }),
                None => Either::Right(view! {
                    <button class="button button-danger" data-testid="start-rollback" disabled={total == 0}
                        on:click=move |_| confirming.set(Some(Pending::Start(RunKind::Rollback)))>
                        {format!("Roll back {} rows…", format_count(total))}
                    </button>
                }),
            }}
        </div>
    }
}
