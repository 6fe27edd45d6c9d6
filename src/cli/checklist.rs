//! `sti-rollout checklist …`: the post-rollout checklist's template (admins' tool) and each
//! environment's state. Items are added or retired, never edited: a retired item keeps its
//! sign-offs.

use super::CliError;
use crate::db::{checklist, Database};
use crate::domain::access::Role;
use crate::domain::environment::Environment;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ChecklistAction {
    /// Add an item at the end of the template.
    Add {
        #[arg(long)]
        title: String,
        /// Who signs it: viewer, operator or admin (or anyone above).
        #[arg(long)]
        owner_role: Role,
    },
    /// Retire an item from the template; its sign-offs stay.
    Retire {
        #[arg(long)]
        id: i64,
    },
    /// The template, or with --env that environment's sign-offs.
    List {
        #[arg(long)]
        env: Option<Environment>,
    },
}

pub async fn run(control: &Database, action: ChecklistAction) -> Result<(), CliError> {
    let db_error = |e: sqlx::Error| CliError::User(format!("the checklist cannot be changed: {e}"));
    let actor = super::actor();
    match action {
        ChecklistAction::Add { title, owner_role } => {
            let title = crate::domain::checklist::item_title(&title).map_err(CliError::User)?;
            let id = checklist::add_item(control, title, owner_role, &actor).await.map_err(db_error)?;
            eprintln!("checklist item #{id} added; signed by: {owner_role} or above");
        }
        ChecklistAction::Retire { id } => {
            if !checklist::retire_item(control, id, &actor).await.map_err(db_error)? {
                return Err(CliError::User(format!("there is no current checklist item #{id}")));
            }
            eprintln!("checklist item #{id} retired; its sign-offs stay");
        }
        ChecklistAction::List { env: None } => {
            for item in checklist::items(control).await.map_err(db_error)? {
                println!("{:>3}  {:<8}  {}", item.id, item.owner_role.as_str(), item.title);
            }
        }
        ChecklistAction::List { env: Some(env) } => {
            let entries = checklist::entries(control, env).await.map_err(db_error)?;
            println!("{env}: {}", crate::domain::checklist::tally(&entries));
            for entry in entries {
                let signed = entry
                    .latest
                    .as_ref()
                    .map(|s| format!("{} by {}", s.state.as_str(), s.signed_by))
                    .unwrap_or_else(|| "pending".into());
                println!("{:>3}  {:<24}  {}", entry.item.id, signed, entry.item.title);
            }
        }
    }
    Ok(())
}
