//! The waiting box: what a person woken because a run waits reads first. Why, for how long, how
//! many tries and when the run gives up; on PostgreSQL the sessions that hold the tables (asked
//! again at every try); pause and emergency stop right there; the runbook and the contacts.

use super::next::Asked;
use crate::api::environment::blockers;
use crate::domain::blockers::{Blockers, Session};
use crate::domain::environment::Environment;
use crate::domain::format::{capitalised, clock_ms, format_duration};
use crate::domain::health::Health;
use crate::domain::live::{LiveView, RunView};
use crate::domain::next_step::Action as NextAction;
use crate::domain::run::{Hold, HoldKind};
use leptos::either::Either;
use leptos::prelude::*;

/// `hold` as the box says it at `now`: elapsed, tries, the give-up time and how far off it is.
fn figures(hold: &Hold, now: i64) -> (String, String, String) {
    let waited = format_duration((now - hold.since_ms) as f64 / 1000.0);
    let tries = match hold.tries {
        0 => "–".to_owned(),
        n => n.to_string(),
    };
    let gives_up = match hold.gives_up_at_ms {
        Some(at) if at > now => format!(
            "{} UTC (in {}): the run fails then and keeps what it copied",
            clock_ms(at),
            format_duration((at - now) as f64 / 1000.0)
        ),
        Some(at) => format!("{} UTC: the run fails at its next try", clock_ms(at)),
        None => "never: it holds while its signal is over".to_owned(),
    };
    (waited, tries, gives_up)
}

/// What the box shows of the target's sessions: asked again at every try of a waiting run (not
/// at every push), for operators only.
pub(super) type Look = Action<(), Result<Blockers, ServerFnError>>;

/// The box's question to the target, created once for the page's run card.
pub(super) fn look(env: Environment, live: RwSignal<LiveView>, operator: bool) -> Look {
    let look = Action::new(move |_: &()| blockers(env.to_string()));
    let try_no = Memo::new(move |_| {
        let live = live.read();
        let run = live.run.as_ref()?;
        let hold = run.hold.as_ref().filter(|h| h.kind == HoldKind::Waiting)?;
        Some((run.id, hold.tries))
    });
    Effect::new(move |_| {
        if operator && try_no.get().is_some() {
            look.dispatch(());
        }
    });
    look
}

#[component]
pub(super) fn WaitingBox(
    env: Environment,
    run: RunView,
    hold: Hold,
    clock: RwSignal<i64>,
    operator: bool,
    asked: Asked,
    look: Look,
) -> impl IntoView {
    let counting = {
        let run = run.clone();
        move || {
            let now = clock.get();
            capitalised(&Health::of(&run, now).describe(now, |ms| format!("{} UTC", clock_ms(ms))))
        }
    };
    let lines = Memo::new(move |_| figures(&hold, clock.get()));
    view! {
        <div class="notice notice-warn waiting-box" role="status" data-testid="run-hold">
            <p class="waiting-line">
                {counting}
                " · the run goes on by itself when the database answers; nothing committed is lost"
            </p>
            <dl class="waiting-figures">
                <div><dt>"Waiting for"</dt><dd data-testid="waiting-for">{move || lines.read().0.clone()}</dd></div>
                <div><dt>"Tries"</dt><dd data-testid="waiting-tries">{move || lines.read().1.clone()}</dd></div>
                <div class="figure-wide"><dt>"Gives up"</dt><dd data-testid="waiting-gives-up">{move || lines.read().2.clone()}</dd></div>
            </dl>
            {operator.then(|| view! {
                <div class="waiting-check" data-testid="blockers">
                    <h3>"What to check"</h3>
                    {move || match look.value().get() {
                        None => Either::Left(view! { <p class="muted">"Asking the database who holds its tables…"</p> }.into_any()),
                        Some(Err(e)) => Either::Left(view! { <p class="muted">{e.to_string()}</p> }.into_any()),
                        Some(Ok(found)) => Either::Right(sessions(found)),
                    }}
                    <p class="muted">"The same from a shell: "<code>{format!("sti-rollout blockers --env {env}")}</code></p>
                </div>
                <div class="control-row">
                    <button class="button" data-testid="waiting-pause" on:click=move |_| asked.set(Some(NextAction::Pause))>"Pause"</button>
                    <a class="button button-danger" href="#controls-heading" data-testid="waiting-stop" on:click=move |_| asked.set(Some(NextAction::EmergencyStop))>"Emergency stop…"</a>
                </div>
            })}
            <p class="waiting-links">
                <a href="/runbook#a-run-that-waits" data-testid="runbook-link">"Runbook: a run that waits"</a>
                " · "
                <a href="#contacts-heading">"Who to call"</a>
            </p>
        </div>
    }
}

/// The target's answer as a table, or the sentence that stands for it.
fn sessions(found: Blockers) -> AnyView {
    match found {
        Blockers::Unknown(what) => view! { <p data-testid="blockers-unknown">{what}</p> }.into_any(),
        Blockers::Sessions(list) if list.is_empty() => view! {
            <p data-testid="blockers-none">"No other session holds a lock on projects or the subtype tables right now: the fault may be the database itself (restarting, out of connections) — see the reason above."</p>
        }.into_any(),
        Blockers::Sessions(list) => view! {
            <p>"Sessions holding locks on projects or the subtype tables, the ones blocking the run first:"</p>
            // one block per session, not a table: eight columns do not fit a phone
            <ul class="blockers" data-testid="blockers-table">
                {list.into_iter().map(session).collect_view()}
            </ul>
        }.into_any(),
    }
}

/// `pid 6098 · billing-app · user postgres`, its state and transaction age, what it waits for,
/// the start of its statement.
fn session(s: Session) -> impl IntoView {
    let age =
        s.transaction_ms.map(|ms| format!(" · transaction open for {}", format_duration(ms as f64 / 1000.0)));
    let application = if s.application.is_empty() { "no application name".to_owned() } else { s.application };
    view! {
        <li class=if s.blocking { "blocker blocker-now" } else { "blocker" }>
            <p class="blocker-head">
                {s.blocking.then(|| view! { <span class="badge badge-blocking">"blocking the run now"</span>" " })}
                <strong>{application}</strong>
                {format!(" · pid {} · user {}", s.pid, s.user)}
            </p>
            <p class="blocker-state">
                {s.state}{age}
                {s.wait.map(|w| format!(" · waits for {w}"))}
            </p>
            <code class="blocker-query">{s.query}</code>
        </li>
    }
}
