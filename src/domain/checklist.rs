//! The post-rollout checklist: template items with an owner role, and per environment the latest
//! sign-off of each (earlier ones are kept, superseded, never rewritten).

use super::access::Role;
use serde::{Deserialize, Serialize};

/// Where an item stands in one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignState {
    Pending,
    Pass,
    Fail,
    Waived,
}

impl SignState {
    pub const ALL: [SignState; 4] = [SignState::Pending, SignState::Pass, SignState::Fail, SignState::Waived];

    pub fn as_str(self) -> &'static str {
        match self {
            SignState::Pending => "pending",
            SignState::Pass => "pass",
            SignState::Fail => "fail",
            SignState::Waived => "waived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Counts towards a complete checklist.
    pub fn is_signed(self) -> bool {
        matches!(self, SignState::Pass | SignState::Waived)
    }
}

/// A template item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub id: i64,
    pub position: i64,
    pub title: String,
    /// Who signs it: users whose role allows this one.
    pub owner_role: Role,
}

/// The newest sign-off of an item in one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    pub state: SignState,
    pub comment: String,
    pub evidence_url: Option<String>,
    pub signed_by: String,
    pub signed_at: i64,
}

impl SignOff {
    /// `pass by user:ana · 2026-12-08 14:02 UTC — dashboards fine (3 sign-offs)`, given the
    /// item's number of sign-offs in its environment.
    pub fn describe(&self, signoffs: i64) -> String {
        let mut line = format!(
            "{} by {} · {}",
            self.state.as_str(),
            self.signed_by,
            super::format::format_epoch_ms(self.signed_at)
        );
        if !self.comment.is_empty() {
            line.push_str(&format!(" — {}", self.comment));
        }
        if signoffs > 1 {
            line.push_str(&format!(" ({signoffs} sign-offs)"));
        }
        line
    }
}

/// One line of an environment's checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistEntry {
    pub item: ChecklistItem,
    /// `None` until someone signs it.
    pub latest: Option<SignOff>,
    /// How many sign-offs it had in this environment, superseded ones included.
    pub signoffs: i64,
}

impl ChecklistEntry {
    pub fn state(&self) -> SignState {
        self.latest.as_ref().map_or(SignState::Pending, |s| s.state)
    }
}

/// One person's sign-offs across environments: the items their role owns, per environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MySignoffs {
    pub role: Role,
    pub environments: Vec<(super::environment::Environment, Vec<ChecklistEntry>)>,
}

impl MySignoffs {
    /// Items still to sign (pending or failed) over every environment.
    pub fn open(&self) -> usize {
        self.environments.iter().flat_map(|(_, e)| e).filter(|e| !e.state().is_signed()).count()
    }
}

/// A template item's title, trimmed: 1 to 200 characters.
pub fn item_title(title: &str) -> Result<&str, String> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err("an item's title has 1 to 200 characters".into());
    }
    Ok(title)
}

/// How far a checklist is signed: `4 of 9 signed — 3 pass · 1 waived · 1 fail · 4 pending`
/// (a state with no item is left out), so a failed item is counted, not hidden in "not signed".
pub fn tally(entries: &[ChecklistEntry]) -> String {
    let count = |state: SignState| entries.iter().filter(|e| e.state() == state).count();
    let signed = entries.iter().filter(|e| e.state().is_signed()).count();
    let parts: Vec<String> = [SignState::Pass, SignState::Waived, SignState::Fail, SignState::Pending]
        .into_iter()
        .filter(|s| count(*s) > 0)
        .map(|s| format!("{} {}", count(s), s.as_str()))
        .collect();
    match parts.is_empty() {
        true => "No items".to_owned(),
        false => format!("{signed} of {} signed — {}", entries.len(), parts.join(" · ")),
    }
}

/// Why a sign-off is refused, in words; `None` when it is fine.
pub fn refuse_signoff(
    role: Role,
    item: &ChecklistItem,
    state: SignState,
    comment: &str,
    evidence: Option<&str>,
) -> Option<String> {
    if !role.allows(item.owner_role) {
        return Some(format!(
            "'{}' is signed by {} or above, not {}",
            item.title,
            item.owner_role.with_article(),
            role.with_article()
        ));
    }
    if matches!(state, SignState::Fail | SignState::Waived) && comment.trim().is_empty() {
        return Some(format!("say why the item is {}", state.as_str()));
    }
    if let Some(url) = evidence.filter(|u| !u.is_empty()) {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
            return Some("the evidence link must be an http(s) URL".into());
        }
    }
    if comment.len() > 4000 {
        return Some("the comment is longer than 4000 characters".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(owner_role: Role) -> ChecklistItem {
        ChecklistItem { id: 1, position: 1, title: "Stakeholder sign-off".into(), owner_role }
    }

    #[test]
    fn only_the_owner_role_or_above_signs() {
        assert_eq!(refuse_signoff(Role::Viewer, &item(Role::Viewer), SignState::Pass, "", None), None);
        assert_eq!(refuse_signoff(Role::Admin, &item(Role::Viewer), SignState::Pass, "", None), None);
        let refused = refuse_signoff(Role::Viewer, &item(Role::Operator), SignState::Pass, "", None).unwrap();
        assert!(refused.ends_with("is signed by an operator or above, not a viewer"), "{refused}");
    }

    #[test]
    fn failing_or_waiving_needs_a_reason_and_evidence_is_a_web_link() {
        assert!(refuse_signoff(Role::Admin, &item(Role::Viewer), SignState::Waived, " ", None).is_some());
        assert_eq!(refuse_signoff(Role::Admin, &item(Role::Viewer), SignState::Fail, "5xx up", None), None);
        assert!(refuse_signoff(
            Role::Admin,
            &item(Role::Viewer),
            SignState::Pass,
            "",
            Some("javascript:alert(1)")
        )
        .is_some());
        assert_eq!(
            refuse_signoff(
                Role::Admin,
                &item(Role::Viewer),
                SignState::Pass,
                "",
                Some("https://grafana/d/1")
            ),
            None
        );
    }

    #[test]
    fn the_tally_counts_a_failed_item_instead_of_hiding_it_in_not_signed() {
        let entry = |state: Option<SignState>| ChecklistEntry {
            item: item(Role::Viewer),
            latest: state.map(|state| SignOff {
                state,
                comment: String::new(),
                evidence_url: None,
                signed_by: "user:ana".into(),
                signed_at: 0,
            }),
            signoffs: i64::from(state.is_some()),
        };
        let entries = [
            entry(Some(SignState::Pass)),
            entry(Some(SignState::Pass)),
            entry(Some(SignState::Waived)),
            entry(Some(SignState::Fail)),
            entry(None),
        ];
        assert_eq!(tally(&entries), "3 of 5 signed — 2 pass · 1 waived · 1 fail · 1 pending");
        assert_eq!(tally(&entries[..1]), "1 of 1 signed — 1 pass");
        assert_eq!(tally(&[]), "No items");
    }

    #[test]
    fn only_pass_and_waived_count_as_signed() {
        assert!(SignState::Pass.is_signed() && SignState::Waived.is_signed());
        assert!(!SignState::Fail.is_signed() && !SignState::Pending.is_signed());
        assert_eq!(SignState::parse("waived"), Some(SignState::Waived));
        assert_eq!(SignState::parse("done"), None);
    }
}
