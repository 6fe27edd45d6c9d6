//! The notifications card: the environment's webhooks and their newest deliveries, as the page
//! loaded (a delivery log, not a live view: reload to see new ones).

use crate::domain::environment::Environment;
use crate::domain::format::format_epoch_ms;
use crate::domain::notifications::{Delivery, DeliveryState, Notifications};
use leptos::either::Either;
use leptos::prelude::*;

#[component]
pub(super) fn NotificationsCard(
    env: Environment,
    notifications: Result<Notifications, String>,
) -> impl IntoView {
    let notifications = match notifications {
        Ok(n) => n,
        Err(why) => {
            return Either::Left(view! {
                <h2 id="notifications-heading">"Notifications"</h2>
                <p class="error" role="alert">{why}</p>
            })
        }
    };
    let hooks = if notifications.hooks.is_empty() {
        Either::Left(view! {
            <p class="empty">"No webhooks configured for this environment: add [[webhooks."{env.as_str()}"]] entries to the config file."</p>
        })
    } else {
        Either::Right(view! {
            <ul class="hooks">
                {notifications.hooks.into_iter().map(|h| view! {
                    <li>
                        <strong>{h.name}</strong>" · "{h.format}" · "
                        {if h.signed { "signed" } else { "unsigned" }}" · "
                        <span class="muted">{h.events.join(", ")}</span>
                    </li>
                }).collect_view()}
            </ul>
        })
    };
    let log = if notifications.deliveries.is_empty() {
        Either::Left(view! { <p class="empty">"Nothing sent yet."</p> })
    } else {
        Either::Right(view! {
            <div class="table-scroll">
            <table class="table" data-testid="deliveries">
                <thead><tr>
                    <th>"Time"</th><th>"Event"</th><th>"Webhook"</th><th>"Status"</th><th>"Attempts"</th>
                </tr></thead>
                <tbody>
                    {notifications.deliveries.into_iter().map(|d| view! {
                        <tr>
                            <td class="when">{format_epoch_ms(d.created_at)}</td>
                            <td><code>{d.event.clone()}</code><div class="muted delivery-summary">{d.summary.clone()}</div></td>
                            <td>{d.hook.clone()}</td>
                            <td><span class=format!("delivery delivery-{}", d.state.as_str())>{status(&d)}</span></td>
                            <td>{d.attempts}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            </div>
        })
    };
    Either::Right(view! {
        <h2 id="notifications-heading">"Notifications"</h2>
        {hooks}
        {log}
    })
}

/// A delivery's state in words: with the receiver's answer, and when it is tried next.
fn status(d: &Delivery) -> String {
    let answer = match (d.last_status, &d.last_error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    };
    match d.state {
        DeliveryState::Delivered => format!("delivered ({answer})"),
        DeliveryState::Failed => format!("given up: {}", d.last_error.as_deref().unwrap_or(&answer)),
        DeliveryState::Pending if d.attempts == 0 => "queued".to_owned(),
        DeliveryState::Pending => format!("retrying at {} ({answer})", format_epoch_ms(d.next_attempt_at)),
    }
}
