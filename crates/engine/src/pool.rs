//! The public pool (公海): who may claim a lead from a pool, and what a claim changes. Pure:
//! the server counts the rep's claims today and looks up their cooldown, and applies the
//! returned state change in the transaction that records the claim.

use chrono::{DateTime, Duration, Utc};

use crate::follow_up::ClaimRules;
use crate::rep::{RepId, RepStatus};
use crate::roster::Roster;
use crate::state::{RoutingState, StateChange};

/// A pool's rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolRules {
    pub id: String,
    /// Members of these teams may claim; with `reps`, the union. Both empty: everyone.
    pub teams: Vec<String>,
    pub reps: Vec<RepId>,
    /// Claims one rep may make per day (in their zone), across every pool.
    pub claims_per_day: Option<u32>,
    /// A rep who had the lead cannot claim it back for this long after it left them.
    pub cooldown: Duration,
    pub claim: ClaimRules,
}

impl PoolRules {
    /// Whether the rep belongs to the pool's scope.
    pub fn admits(&self, roster: &Roster, rep: &RepId) -> bool {
        if self.teams.is_empty() && self.reps.is_empty() {
            return true;
        }
        self.reps.contains(rep)
            || self.teams.iter().any(|team| {
                roster
                    .team(team)
                    .is_some_and(|team| team.team.members.iter().any(|m| &m.rep == rep))
            })
    }
}

/// Why a claim is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimRefusal {
    UnknownRep,
    /// The lead is not waiting in a pool (someone owns it, or it is closed).
    NotInPool,
    NotMember,
    Status(RepStatus),
    DailyLimit {
        limit: u32,
    },
    Cooldown {
        until: DateTime<Utc>,
    },
    HoldingCap {
        open: u32,
        cap: u32,
    },
}

impl ClaimRefusal {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            ClaimRefusal::UnknownRep => "unknown_rep",
            ClaimRefusal::NotInPool => "not_in_pool",
            ClaimRefusal::NotMember => "not_pool_member",
            ClaimRefusal::Status(_) => "rep_unavailable",
            ClaimRefusal::DailyLimit { .. } => "claim_limit",
            ClaimRefusal::Cooldown { .. } => "claim_cooldown",
            ClaimRefusal::HoldingCap { .. } => "holding_cap",
        }
    }

    pub fn message(&self) -> String {
        match self {
            ClaimRefusal::UnknownRep => "no rep has that id".into(),
            ClaimRefusal::NotInPool => {
                "the lead is not in a pool: someone claimed it first, or it is closed".into()
            }
            ClaimRefusal::NotMember => "the rep is not a member of this pool".into(),
            ClaimRefusal::Status(status) => {
                format!("the rep is {} and cannot claim", status.as_str())
            }
            ClaimRefusal::DailyLimit { limit } => {
                format!("the rep has made today's {limit} claims")
            }
            ClaimRefusal::Cooldown { until } => format!(
                "the rep had this lead and cannot claim it again before {}",
                until.to_rfc3339()
            ),
            ClaimRefusal::HoldingCap { open, cap } => {
                format!("the rep holds {open} open leads, at their cap of {cap}")
            }
        }
    }
}

/// What the server knows about the rep and the lead for one claim.
#[derive(Clone, Copy, Debug)]
pub struct ClaimContext {
    pub claims_today: u32,
    /// When the rep's cooldown on this lead ends, if they had it.
    pub blocked_until: Option<DateTime<Utc>>,
}

/// Checks a claim and returns the state change to apply with it: the lead counts against the
/// rep's holding cap (保有量), shared with routing.
pub fn claim(
    rules: &PoolRules,
    roster: &Roster,
    state: &RoutingState,
    rep: &RepId,
    context: ClaimContext,
    now: DateTime<Utc>,
) -> Result<Vec<StateChange>, ClaimRefusal> {
    let position = roster.position(rep).ok_or(ClaimRefusal::UnknownRep)?;
    if !rules.admits(roster, rep) {
        return Err(ClaimRefusal::NotMember);
    }
    let record = roster.rep(position);
    if matches!(record.status, RepStatus::Inactive | RepStatus::OnLeave) {
        return Err(ClaimRefusal::Status(record.status));
    }
    if let Some(until) = context.blocked_until.filter(|until| *until > now) {
        return Err(ClaimRefusal::Cooldown { until });
    }
    if let Some(limit) = rules.claims_per_day
        && context.claims_today >= limit
    {
        return Err(ClaimRefusal::DailyLimit { limit });
    }
    let open = state.rep(position).open_leads;
    if let Some(cap) = record.caps.max_open
        && open >= cap
    {
        return Err(ClaimRefusal::HoldingCap { open, cap });
    }
    Ok(vec![StateChange::Claimed { rep: rep.clone() }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rep::Rep;
    use crate::team::{Member, Team};

    fn roster() -> Roster {
        let mut capped = Rep::new("ann", "Ann");
        capped.caps.max_open = Some(1);
        let mut away = Rep::new("bob", "Bob");
        away.status = RepStatus::OnLeave;
        let mut team = Team::new("north", "North");
        team.members.push(Member {
            rep: RepId::new("ann"),
            weight: None,
        });
        Roster::new(vec![capped, away, Rep::new("cy", "Cy")], vec![team]).expect("valid")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
    }

    #[test]
    fn claims_respect_scope_status_limits_cooldown_and_the_holding_cap() {
        let roster = roster();
        let mut state = RoutingState::new(&roster);
        let rules = PoolRules {
            id: "north".into(),
            teams: vec!["north".into()],
            reps: vec![RepId::new("bob")],
            claims_per_day: Some(2),
            cooldown: Duration::days(7),
            ..PoolRules::default()
        };
        let fresh = ClaimContext {
            claims_today: 0,
            blocked_until: None,
        };
        let ann = RepId::new("ann");
        let attempt = |state: &RoutingState, rep: &RepId, context| {
            claim(&rules, &roster, state, rep, context, now())
        };
        assert_eq!(
            attempt(&state, &RepId::new("cy"), fresh),
            Err(ClaimRefusal::NotMember)
        );
        assert_eq!(
            attempt(&state, &RepId::new("bob"), fresh),
            Err(ClaimRefusal::Status(RepStatus::OnLeave))
        );
        assert_eq!(
            attempt(&state, &RepId::new("zed"), fresh),
            Err(ClaimRefusal::UnknownRep)
        );
        let blocked = ClaimContext {
            blocked_until: Some(now() + Duration::days(1)),
            ..fresh
        };
        assert_eq!(
            attempt(&state, &ann, blocked),
            Err(ClaimRefusal::Cooldown {
                until: now() + Duration::days(1)
            })
        );
        let expired = ClaimContext {
            blocked_until: Some(now()),
            ..fresh
        };
        assert!(attempt(&state, &ann, expired).is_ok());
        let busy = ClaimContext {
            claims_today: 2,
            ..fresh
        };
        assert_eq!(
            attempt(&state, &ann, busy),
            Err(ClaimRefusal::DailyLimit { limit: 2 })
        );
        let changes = attempt(&state, &ann, fresh).expect("valid");
        state.apply(&roster, &changes);
        assert_eq!(
            attempt(&state, &ann, fresh),
            Err(ClaimRefusal::HoldingCap { open: 1, cap: 1 })
        );
        let position = roster.position(&ann).expect("valid");
        assert_eq!(state.rep(position).day.count, 0, "claims are not routing");
    }

    #[test]
    fn a_pool_without_scope_admits_everyone() {
        let roster = roster();
        let rules = PoolRules::default();
        assert!(rules.admits(&roster, &RepId::new("cy")));
    }
}
