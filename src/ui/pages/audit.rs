//! `/audit`: every change, newest first — filter by environment, actor, action and dates; export
//! what the filter shows as CSV or JSON. Rendered on the server from the query string (a plain
//! `GET` form and page links), so a filtered view is a link one can share, and the page costs the
//! WebAssembly nothing.

use crate::api::audit::audit_log;
use crate::domain::audit::AuditPage;
use crate::domain::environment::Environment;
use crate::domain::format::{format_count, format_epoch_ms};
use crate::ui::components::async_view::AsyncView;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

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

/// `/audit{suffix}` with the filter, e.g. `.csv` for the export or `""` and a page number.
fn link(suffix: &str, (env, actor, action, from, to): &Applied) -> String {
    format!(
        "/audit{suffix}?env={}&actor={}&action={}&from={}&to={}",
        encode(env),
        encode(actor),
        encode(action),
        encode(from),
        encode(to)
    )
}

#[component]
pub fn AuditLogPage() -> impl IntoView {
    // read once: a new filter or page is a new request for the page
    let (filter, page_no): (Applied, i64) = use_query_map().with_untracked(|q| {
        let get = |key: &str| q.get(key).unwrap_or_default();
        let page = q.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(1).max(1);
        ((get("env"), get("actor"), get("action"), get("from"), get("to")), page)
    });
    let source = (filter.clone(), page_no);
    let entries = Resource::new(
        move || source.clone(),
        |((env, actor, action, from, to), page)| audit_log(env, actor, action, from, to, page),
    );
    let (env, actor, action, from, to) = filter.clone();
    let (csv, json) = (link(".csv", &filter), link(".json", &filter));
    let view_page = move |page: AuditPage| {
        let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
        let current = page.page;
        let page_link = |n: i64| format!("{}&page={n}", link("", &filter));
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
            <nav class="pager" aria-label="Pages">
                {(current > 1).then(|| view! { <a class="button" data-testid="audit-newer" href=page_link(current - 1)>"Newer"</a> })}
                <span>{format!("page {current} of {pages}")}</span>
                {(current < pages).then(|| view! { <a class="button" data-testid="audit-older" href=page_link(current + 1)>"Older"</a> })}
            </nav>
        }
    };
    view! {
        <Title text="Audit log"/>
        <div class="page-head">
            <div>
                <h1>"Audit log"</h1>
                <p class="lede">"Every change, by whom, where, from what to what, and why. Append-only."</p>
            </div>
            <div class="head-side">
                <a class="button" data-testid="audit-csv" href=csv download>"Export CSV"</a>
                <a class="button" data-testid="audit-json" href=json download>"Export JSON"</a>
            </div>
        </div>
        <form class="card control-row audit-filter" method="get" action="/audit">
            <label>"Environment"
                <select name="env" data-testid="audit-env">
                    <option value="">"all"</option>
                    {Environment::ALL.iter().map(|e| view! { <option value=e.as_str() selected=env == e.as_str()>{e.as_str()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Actor"<input name="actor" data-testid="audit-actor" placeholder="ana or user:ana" value=actor/></label>
            <label>"Action"<input name="action" data-testid="audit-action" placeholder="flag.set or run." value=action/></label>
            <label>"From"<input type="date" name="from" data-testid="audit-from" value=from/></label>
            <label>"To"<input type="date" name="to" data-testid="audit-to" value=to/></label>
            <button type="submit" class="button" data-testid="audit-apply">"Filter"</button>
        </form>
        <AsyncView resource=entries view=view_page/>
    }
}
