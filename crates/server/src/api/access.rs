//! What a caller may see: a rep their own leads (and the pool, without customers' contact
//! details), a manager their teams' reps and leads, admins and reporting keys everything
//! (reporting without contact details). Objects the caller must not know exist are 404.

use store::{LeadFilter, LeadRow};

use crate::AppState;
use crate::auth::{Caller, Role, forbidden};
use crate::error::{ApiError, ApiResult};
use crate::leads::{LeadView, lead_view};
use crate::workspace::TeamDocument;

/// The reps in these teams (members and managers).
pub async fn members(app: &AppState, teams: &[String]) -> ApiResult<Vec<String>> {
    let mut reps = Vec::new();
    for row in app.store.list_teams().await? {
        if !teams.contains(&row.id) {
            continue;
        }
        let Ok(document) = serde_json::from_str::<TeamDocument>(&row.document) else {
            continue;
        };
        reps.extend(document.members.into_iter().map(|member| member.rep_id));
        reps.extend(document.manager_id);
    }
    reps.sort();
    reps.dedup();
    Ok(reps)
}

/// Whether the caller may see the lead.
async fn sees(app: &AppState, caller: &Caller, lead: &LeadRow) -> ApiResult<bool> {
    Ok(match caller.role {
        Role::Admin | Role::Reporting => true,
        Role::Integration => false,
        Role::Rep => lead.owner_id.is_some() && lead.owner_id == caller.rep_id,
        Role::Manager => match &lead.owner_id {
            // The pool and the hold queue.
            None => true,
            Some(owner) => {
                lead.team_id
                    .as_ref()
                    .is_some_and(|team| caller.teams.contains(team))
                    || caller.rep_id.as_ref() == Some(owner)
                    || members(app, &caller.teams).await?.contains(owner)
            }
        },
    })
}

/// The lead, when the caller may see it; 404 as if it did not exist otherwise.
pub async fn lead(app: &AppState, caller: &Caller, id: &str) -> ApiResult<LeadRow> {
    let row = app
        .store
        .get_lead(id)
        .await?
        .ok_or_else(|| ApiError::not_found("lead"))?;
    if sees(app, caller, &row).await? {
        Ok(row)
    } else {
        Err(ApiError::not_found("lead"))
    }
}

/// Narrows a lead list to what the caller sees.
pub async fn scope(app: &AppState, caller: &Caller, filter: &mut LeadFilter) -> ApiResult<()> {
    match caller.role {
        Role::Admin | Role::Reporting => {}
        Role::Rep => filter.owner_id = Some(caller.rep_id.clone().unwrap_or_default()),
        Role::Manager => {
            let mut owners = members(app, &caller.teams).await?;
            owners.extend(caller.rep_id.clone());
            filter.visible = Some((caller.teams.clone(), owners));
        }
        Role::Integration => return Err(forbidden("integration keys cannot read leads")),
    }
    Ok(())
}

/// A rep the caller may act on: themselves; a manager's team members; anyone for admins. 404
/// for a rep a rep or manager may not touch.
pub async fn rep_in_reach(app: &AppState, caller: &Caller, rep_id: &str) -> ApiResult<()> {
    let reachable = match caller.role {
        Role::Admin => true,
        Role::Rep => caller.rep_id.as_deref() == Some(rep_id),
        Role::Manager => {
            caller.rep_id.as_deref() == Some(rep_id)
                || members(app, &caller.teams)
                    .await?
                    .iter()
                    .any(|member| member == rep_id)
        }
        Role::Integration | Role::Reporting => false,
    };
    if reachable {
        Ok(())
    } else {
        Err(ApiError::not_found("rep"))
    }
}

/// The lead as this caller may see it: contact details hidden where they must be.
pub fn view(caller: &Caller, row: &LeadRow) -> LeadView {
    let mut view = lead_view(row);
    if caller.hides_contact(row.owner_id.as_deref()) {
        view.document.phone = None;
        view.document.email = None;
        view.document.wechat = None;
    }
    view
}

/// A lead after a change, with its decision, as this caller may see it: `{lead, decision}`.
pub fn changed(caller: &Caller, changed: &crate::routing::Changed) -> serde_json::Value {
    serde_json::json!({
        "lead": view(caller, &changed.lead),
        "decision": changed.decision.as_ref().map(crate::leads::decision_view),
    })
}
