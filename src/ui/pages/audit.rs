//! `/audit`: every change, newest first — filter by environment, actor, action and dates; export
//! what the filter shows as CSV or JSON.

use crate::api::audit::audit_log;
use crate::domain::audit::AuditPage;
use crate::domain::environment::Environment;
use crate::domain::live::format_epoch_ms;
use crate::domain::overview::format_count;
use crate::ui::components::async_view::AsyncView;
use leptos::prelude::*;
use leptos_meta::Title;

/// The filter as applied: environment, actor, action, from, to.
type Applied = (String, String, String, String, String);

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn export_link(kind: &str, (env, actor, action, from, to): &Applied) -> String {
    format!(
        "/audit.{kind}?env={}&actor={}&action={}&from={}&to={}",
        encode(env),
        encode(actor),
        encode(action),
        encode(from),
        encode(to)
    )
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    let env = RwSignal::new(String::new());
    let actor = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let applied: RwSignal<Applied> = RwSignal::new(Default::default());
    let page_no = RwSignal::new(1_i64);
    let entries = Resource::new(
        move || (applied.get(), page_no.get()),
        |((env, actor, action, from, to), page)| audit_log(env, actor, action, from, to, page),
    );
    let apply = move || {
        applied.set((
            env.get_untracked(),
            actor.get_untracked(),
            action.get_untracked(),
            from.get_untracked(),
            to.get_untracked(),
        ));
        page_no.set(1);
    };
    view! {
        <Title text="Audit log"/>
        <div class="page-head">
            <div>
                <h1>"Audit log"</h1>
                <p class="lede">"Every change, by whom, where, from what to what, and why. Append-only."</p>
            </div>
            <div class="head-side">
                <a class="button" data-testid="audit-csv" href=move || export_link("csv", &applied.get()) download>"Export CSV"</a>
                <a class="button" data-testid="audit-json" href=move || export_link("json", &applied.get()) download>"Export JSON"</a>
            </div>
        </div>
        <form class="card control-row audit-filter" on:submit=move |e| { e.prevent_default(); apply(); }>
            <label>"Environment"
                <select data-testid="audit-env" on:change=move |e| env.set(event_target_value(&e))>
                    <option value="">"all"</option>
                    {Environment::ALL.iter().map(|e| view! { <option value=e.as_str()>{e.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Actor"<input data-testid="audit-actor" placeholder="ana or user:ana" prop:value=actor on:input=move |e| actor.set(event_target_value(&e))/></label>
            <label>"Action"<input data-testid="audit-action" placeholder="flag.set or run." prop:value=action on:input=move |e| action.set(event_target_value(&e))/></label>
            <label>"From"<input type="date" data-testid="audit-from" prop:value=from on:input=move |e| from.set(event_target_value(&e))/></label>
            <label>"To"<input type="date" data-testid="audit-to" prop:value=to on:input=move |e| to.set(event_target_value(&e))/></label>
            <button type="submit" class="button" data-testid="audit-apply">"Filter"</button>
        </form>
        <AsyncView resource=entries view=move |page: AuditPage| {
            let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
            let current = page.page;
            view! {
                <p class="muted" data-testid="audit-total">{format!("{} entries", format_count(page.total))}</p>
                <div class="table-scroll">
                    <table class="table audit" data-testid="audit-entries">
                        <thead><tr><th>"When"</th><th>"Actor"</th><th>"Action"</th><th>"Env"</th><th>"Before"</th><th>"After"</th><th>"Reason"</th></tr></thead>
                        <tbody>
                            {page.entries.into_iter().map(|e| view! {
                                <tr>
                                    <td class="nowrap">{format_epoch_ms(e.at)}</td>
                                    <td>{e.actor}</td>
                                    <td><code>{e.action}</code></td>
                                    <td>{e.environment.unwrap_or_default()}</td>
                                    <td><code class="json">{e.before.unwrap_or_default()}</code></td>
                                    <td><code class="json">{e.after.unwrap_or_default()}</code></td>
                                    <td>{e.reason.unwrap_or_default()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <div class="pager">
                    <button class="button" disabled={current <= 1} on:click=move |_| page_no.update(|p| *p = (*p - 1).max(1))>"Newer"</button>
                    <span>{format!("page {current} of {pages}")}</span>
                    <button class="button" disabled={current >= pages} on:click=move |_| page_no.update(|p| *p += 1)>"Older"</button>
                </div>
            }
        }/>
    }
}
