//! The runbook's page: the rollout playbook (`docs/sti_rollout.md`), built into the binary and
//! rendered to HTML once, served to anyone signed in. Its headings get ids (`## A run that
//! waits` → `a-run-that-waits`), so the console links to the section a person needs.

use leptos::prelude::*;

/// The runbook as HTML.
#[server(endpoint = "runbook", client = crate::api::client::ConsoleClient, output = crate::api::codec::JsonText)]
pub async fn runbook() -> Result<String, ServerFnError> {
    super::require(crate::domain::access::Role::Viewer).await?;
    Ok(render::html().to_owned())
}

#[cfg(feature = "ssr")]
mod render {
    use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
    use std::sync::OnceLock;

    const SOURCE: &str = include_str!("../../docs/sti_rollout.md");

    /// The runbook as HTML (our own text: nothing in it comes from a user).
    pub fn html() -> &'static str {
        static HTML: OnceLock<String> = OnceLock::new();
        HTML.get_or_init(|| render(SOURCE))
    }

    fn render(markdown: &str) -> String {
        let mut events: Vec<Event> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
        let mut i = 0;
        while i < events.len() {
            if let Event::Start(Tag::Heading { .. }) = &events[i] {
                let text: String = events[i + 1..]
                    .iter()
                    .take_while(|e| !matches!(e, Event::End(TagEnd::Heading(_))))
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
                    *id = Some(CowStr::from(slug(&text)));
                }
            }
            i += 1;
        }
        let mut out = String::new();
        html::push_html(&mut out, events.into_iter());
        out
    }

    /// `A run that waits` → `a-run-that-waits`: lower case, letters and digits, one `-` between words.
    fn slug(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            if c.is_alphanumeric() {
                out.extend(c.to_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_end_matches('-').to_owned()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn headings_get_ids_the_console_links_to() {
            assert_eq!(slug("A run that waits"), "a-run-that-waits");
            assert_eq!(slug("Post-rollout checklist"), "post-rollout-checklist");
            let page = html();
            // the waiting box links here
            assert!(page.contains(r#"<h3 id="a-run-that-waits">A run that waits</h3>"#), "{page}");
            assert!(page.contains("<table>") || !SOURCE.contains("\n|"), "tables are rendered");
        }
    }
}
