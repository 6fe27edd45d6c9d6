//! The run history table and the six-phase stepper.

use crate::domain::environment::Environment;
use crate::domain::format::{format_count, format_duration, format_epoch_ms};
use crate::domain::health::Health;
use crate::domain::live::LiveView;
use crate::domain::phases::Phase;
use leptos::either::Either;
use leptos::prelude::*;

#[component]
pub(super) fn History(env: Environment, live: RwSignal<LiveView>) -> impl IntoView {
    view! {
        <h2 id="history-heading">"Run history"</h2>
        {move || {
            let (history, now, take_overs) = {
                let view = live.read();
                (view.history.clone(), view.read_at, view.take_overs.clone())
            };
            if history.is_empty() {
                return Either::Left(view! { <p class="empty">"No runs yet."</p> });
            }
            Either::Right(view! {
                <div class="table-scroll">
                <table class="table" data-testid="history">
                    <thead><tr>
                        <th>"Run"</th><th>"Kind"</th><th>"Outcome"</th><th>"Started by, then held by"</th><th>"Started"</th>
                        <th>"Chunk"</th><th>"Created"</th><th>"Skipped"</th><th>"Rejected"</th><th>"Duration"</th><th>"Ledger"</th>
                    </tr></thead>
                    <tbody>
                        {history.into_iter().map(|run| { let health = Health::of(&run, now); view! {
                            <tr>
                                <td>{format!("#{}", run.id)}</td>
                                <td>{run.kind.as_str()}</td>
                                <td><span class=format!("run-state run-state-{}", health.as_str())>{health.label()}</span></td>
                                <td data-testid=format!("holders-{}", run.id)>
                                    {run.started_by.clone()}
                                    // every holder after the first: who took the run over, when, from where
                                    {take_overs.iter().filter(|t| t.run_id == run.id).map(|t| view! {
                                        <span class="holder">{format!("taken over by {} · {} · after id {}", t.actor, format_epoch_ms(t.at), format_count(t.checkpoint))}</span>
                                    }).collect_view()}
                                </td>
                                <td>{format_epoch_ms(run.created_at)}</td>
                                <td>{format_count(run.chunk_size)}</td>
                                <td>{format_count(run.created())}</td>
                                <td>{format_count(run.skipped())}</td>
                                <td>{format_count(run.errors)}</td>
                                <td>{format_duration(run.duration_ms() as f64 / 1000.0)}</td>
                                <td><a href=format!("/env/{env}/runs/{}/ledger.csv", run.id) download>"CSV"</a></td>
                            </tr>
                        }}).collect_view()}
                    </tbody>
                </table>
                </div>
            })
        }}
    }
}

/// The six phases, from what happened here.
#[component]
pub(super) fn PhaseStepper(live: RwSignal<LiveView>) -> impl IntoView {
    move || {
        let phases = live.read().phases.clone();
        view! {
            <ol class="stepper" data-testid="phases">
                {phases.into_iter().map(|(phase, status)| {
                    view! {
                        <li class=format!("step step-{}", status.as_str()) data-testid=format!("phase-{}", phase_id(phase))>
                            <span class="step-name">{phase.label()}</span>
                            <span class="step-status">{status.label(phase)}</span>
                            {status.reason(phase).map(|why| view! { <span class="step-reason">{why}</span> })}
                        </li>
                    }
                }).collect_view()}
            </ol>
        }
    }
}

fn phase_id(phase: Phase) -> &'static str {
    match phase {
        Phase::DryRun => "dry-run",
        Phase::Backfill => "backfill",
        Phase::Verify => "verify",
        Phase::FlagOn => "flag-on",
        Phase::SignOff => "sign-off",
        Phase::Done => "done",
    }
}
