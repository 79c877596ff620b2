//! Every operation Leadroute offers, by name, with who may call it. The HTTP API, the console
//! and the CLI reach the same handler for an operation, and the handler's first step is
//! [`Caller::may`]: the role check lives with the operation, not with the surface, so a console
//! form cannot do what the role could not do over the API. Objects (a rep's own leads, a
//! manager's teams) are checked next, by `api::access`.

use std::collections::HashMap;

use axum::http::Method;

use crate::auth::{Caller, Role, forbidden};
use crate::error::ApiError;

macro_rules! operations {
    ($($name:ident = $id:literal: $method:ident $path:literal,)*) => {
        /// One operation of the API. The OpenAPI document names each by [`Operation::id`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($name,)*
        }

        impl Operation {
            /// Every operation, so tests can check each one.
            pub const ALL: &[Operation] = &[$(Operation::$name,)*];

            /// The OpenAPI operation id.
            pub fn id(self) -> &'static str {
                match self {
                    $(Operation::$name => $id,)*
                }
            }

            /// The HTTP method and route pattern under `/api/v1`.
            pub fn route(self) -> (Method, &'static str) {
                match self {
                    $(Operation::$name => (Method::$method, $path),)*
                }
            }
        }
    };
}

operations! {
    CreateLead = "create_lead": POST "/leads",
    CreateLeads = "create_batch": POST "/leads/batch",
    ListLeads = "list_leads": GET "/leads",
    GetLead = "get_lead": GET "/leads/{id}",
    PatchLead = "patch_lead": PATCH "/leads/{id}",
    ListDecisions = "lead_decisions": GET "/leads/{id}/decisions",
    AssignLead = "assign_lead": POST "/leads/{id}/assign",
    RerouteLead = "reroute_lead": POST "/leads/{id}/reroute",
    ExplainRoute = "explain": POST "/route/explain",
    LogActivity = "log_activity": POST "/leads/{id}/activities",
    ListActivities = "list_activities": GET "/leads/{id}/activities",
    RecordFeedback = "record_feedback": POST "/leads/{id}/feedback",
    ListFeedback = "list_feedback": GET "/leads/{id}/feedback",
    ListTimers = "list_timers": GET "/leads/{id}/timers",
    ClaimLead = "claim": POST "/leads/{id}/claim",
    ReleaseLead = "release": POST "/leads/{id}/release",
    ListPool = "list_pool": GET "/pool",
    AssignFromPool = "assign_from_pool": POST "/pool/assign",
    DistributePool = "distribute_pool": POST "/pool/distribute",
    ListEvents = "list_events": GET "/events",
    GetStats = "stats": GET "/stats",
    GetDashboard = "dashboard": GET "/reports/dashboard",
    GetScorecard = "scorecard": GET "/reports/reps/{id}",
    SignIn = "login": POST "/session",
    GetSession = "current": GET "/session",
    SignOut = "logout": DELETE "/session",
    ChangePassword = "change_password": PUT "/session/password",
    ListUsers = "list_users": GET "/users",
    CreateUser = "create_user": POST "/users",
    GetUser = "get_user": GET "/users/{id}",
    PatchUser = "patch_user": PATCH "/users/{id}",
    ResetPassword = "reset_password": POST "/users/{id}/password",
    ListKeys = "list_keys": GET "/keys",
    CreateKey = "create_key": POST "/keys",
    RevokeKey = "revoke_key": DELETE "/keys/{id}",
    RotateKey = "rotate_key": POST "/keys/{id}/rotate",
    ListAudit = "list_audit": GET "/audit",
    ListCalendars = "list_calendars": GET "/calendars",
    CreateCalendar = "create_calendar": POST "/calendars",
    GetCalendar = "get_calendar": GET "/calendars/{id}",
    PatchCalendar = "patch_calendar": PATCH "/calendars/{id}",
    DeleteCalendar = "delete_calendar": DELETE "/calendars/{id}",
    ListSlaPolicies = "list_sla_policies": GET "/sla-policies",
    CreateSlaPolicy = "create_sla_policy": POST "/sla-policies",
    GetSlaPolicy = "get_sla_policy": GET "/sla-policies/{id}",
    PatchSlaPolicy = "patch_sla_policy": PATCH "/sla-policies/{id}",
    DeleteSlaPolicy = "delete_sla_policy": DELETE "/sla-policies/{id}",
    ListPools = "list_pools": GET "/pools",
    CreatePool = "create_pool": POST "/pools",
    GetPool = "get_pool": GET "/pools/{id}",
    PatchPool = "patch_pool": PATCH "/pools/{id}",
    DeletePool = "delete_pool": DELETE "/pools/{id}",
    ListChannels = "list_channels": GET "/channels",
    CreateChannel = "create_channel": POST "/channels",
    GetChannel = "get_channel": GET "/channels/{id}",
    PatchChannel = "patch_channel": PATCH "/channels/{id}",
    DeleteChannel = "delete_channel": DELETE "/channels/{id}",
    TestChannel = "test_channel": POST "/channels/{id}/test",
    ListDeliveries = "list_deliveries": GET "/deliveries",
    RetryDelivery = "retry_delivery": POST "/deliveries/{id}/retry",
    ListIntakeSources = "list_intake_sources": GET "/intake-sources",
    CreateIntakeSource = "create_intake_source": POST "/intake-sources",
    GetIntakeSource = "get_intake_source": GET "/intake-sources/{id}",
    PatchIntakeSource = "patch_intake_source": PATCH "/intake-sources/{id}",
    DeleteIntakeSource = "delete_intake_source": DELETE "/intake-sources/{id}",
    IntakeSourceLog = "source_log": GET "/intake-sources/{id}/log",
    ReceiveIntake = "receive": POST "/intake/{source}",
    VerifyIntake = "verify": GET "/intake/{source}",
    ListReps = "list_reps": GET "/reps",
    CreateRep = "create_rep": POST "/reps",
    GetRep = "get_rep": GET "/reps/{id}",
    PatchRep = "patch_rep": PATCH "/reps/{id}",
    DeleteRep = "delete_rep": DELETE "/reps/{id}",
    SetRepStatus = "set_status": PUT "/reps/{id}/status",
    ListFields = "list_fields": GET "/fields",
    CreateField = "create_field": POST "/fields",
    DeleteField = "delete_field": DELETE "/fields/{entity}/{name}",
    ListTeams = "list_teams": GET "/teams",
    CreateTeam = "create_team": POST "/teams",
    GetTeam = "get_team": GET "/teams/{id}",
    PatchTeam = "patch_team": PATCH "/teams/{id}",
    DeleteTeam = "delete_team": DELETE "/teams/{id}",
    ListRuleSets = "list_rule_sets": GET "/rule-sets",
    CreateRuleSet = "create_rule_set": POST "/rule-sets",
    ValidateRuleSet = "validate_rule_set": POST "/rule-sets/validate",
    GetRuleSet = "get_rule_set": GET "/rule-sets/{id}",
    PublishRuleSet = "publish_rule_set": POST "/rule-sets/{id}/publish",
    CreateSimulation = "create_simulation": POST "/simulations",
    ListSimulations = "list_simulations": GET "/simulations",
    GetSimulation = "get_simulation": GET "/simulations/{id}",
    CancelSimulation = "cancel_simulation": POST "/simulations/{id}/cancel",
    TrainModel = "train_model": POST "/models",
    ListModels = "list_models": GET "/models",
    GetModel = "get_model": GET "/models/{id}",
    PublishModel = "publish_model": POST "/models/{id}/publish",
    GetModelSchedule = "get_model_schedule": GET "/models/schedule",
    SetModelSchedule = "set_model_schedule": PUT "/models/schedule",
    GetDuplicatePolicy = "get_duplicate_policy": GET "/settings/duplicates",
    SetDuplicatePolicy = "set_duplicate_policy": PUT "/settings/duplicates",
    ListDuplicates = "list_duplicates": GET "/duplicates",
    DismissDuplicate = "dismiss_duplicate": POST "/duplicates/{id}/dismiss",
    MergeLeads = "merge_leads": POST "/leads/{id}/merge",
}

impl Operation {
    /// Operations that authenticate on their own (a password, an intake source's token or
    /// signature) and so take no caller.
    pub fn public(self) -> bool {
        matches!(
            self,
            Operation::SignIn | Operation::ReceiveIntake | Operation::VerifyIntake
        )
    }

    fn reads(self) -> bool {
        self.route().0 == Method::GET
    }

    /// Users, keys and the audit log: admins only.
    fn accounts(self) -> bool {
        use Operation::*;
        matches!(
            self,
            ListUsers
                | CreateUser
                | GetUser
                | PatchUser
                | ResetPassword
                | ListKeys
                | CreateKey
                | RevokeKey
                | RotateKey
                | ListAudit
        )
    }

    /// Simulations: admins and managers, who decide rules.
    fn simulations(self) -> bool {
        use Operation::*;
        matches!(
            self,
            CreateSimulation | ListSimulations | GetSimulation | CancelSimulation
        )
    }

    /// What anyone signed in may do to their own session.
    fn own_session(self) -> bool {
        matches!(
            self,
            Operation::GetSession | Operation::SignOut | Operation::ChangePassword
        )
    }

    /// Whether the role may call this operation at all; objects are checked next.
    pub fn allowed(self, role: Role) -> bool {
        use Operation::*;
        if self.public() {
            return true;
        }
        match role {
            Role::Admin => true,
            Role::Integration => matches!(self, CreateLead | CreateLeads | RecordFeedback),
            Role::Reporting => {
                self.reads() && !self.accounts() && !self.simulations() && self != GetSession
            }
            Role::Manager => {
                self.own_session()
                    || (self.reads() && !self.accounts())
                    || matches!(
                        self,
                        CreateLead
                            | CreateLeads
                            | PatchLead
                            | AssignLead
                            | RerouteLead
                            | LogActivity
                            | RecordFeedback
                            | ClaimLead
                            | ReleaseLead
                            | AssignFromPool
                            | DistributePool
                            | ExplainRoute
                            | CreateSimulation
                            | CancelSimulation
                            | CreateRuleSet
                            | ValidateRuleSet
                            | PublishRuleSet
                            | TrainModel
                            | PublishModel
                            | SetModelSchedule
                            | DismissDuplicate
                            | MergeLeads
                            | PatchRep
                            | PatchTeam
                            | SetRepStatus
                    )
            }
            Role::Rep => {
                self.own_session()
                    || matches!(
                        self,
                        ListLeads
                            | GetLead
                            | PatchLead
                            | ListDecisions
                            | ListActivities
                            | LogActivity
                            | ListTimers
                            | ListFeedback
                            | ListPool
                            | ClaimLead
                            | ReleaseLead
                            | GetRep
                            | SetRepStatus
                            | GetScorecard
                    )
            }
        }
    }

    /// The operation behind an API route, if it is one (looked up on every request).
    pub fn for_route(method: &Method, path: &str) -> Option<Operation> {
        static ROUTES: std::sync::LazyLock<HashMap<(Method, &'static str), Operation>> =
            std::sync::LazyLock::new(|| {
                Operation::ALL
                    .iter()
                    .map(|operation| (operation.route(), *operation))
                    .collect()
            });
        ROUTES.get(&(method.clone(), path)).copied()
    }

    /// Whether some operation answers on this path, whatever the method.
    pub fn known_path(path: &str) -> bool {
        Operation::ALL
            .iter()
            .any(|operation| operation.route().1 == path)
    }
}

impl Caller {
    /// Refuses the operation unless the caller's role may use it: the first line of every
    /// operation, whichever surface called it.
    pub fn may(&self, operation: Operation) -> Result<(), ApiError> {
        if operation.allowed(self.role) {
            Ok(())
        } else {
            Err(forbidden(&format!(
                "a {} may not {}",
                self.role.as_str(),
                operation.id().replace('_', " ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_and_routes_are_unique() {
        let mut ids = std::collections::HashSet::new();
        let mut routes = std::collections::HashSet::new();
        for operation in Operation::ALL {
            assert!(ids.insert(operation.id()), "{operation:?}");
            assert!(routes.insert(operation.route()), "{operation:?}");
        }
    }

    /// The OpenAPI document and this list agree: every documented operation is here under its
    /// id and route, and every operation here is documented. A new route without an
    /// operation (and so without a role rule) fails this test.
    #[test]
    fn every_operation_is_documented_under_its_id_and_route() {
        let document = serde_json::to_value(crate::openapi()).expect("openapi");
        let mut seen = std::collections::HashSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, details) in item.as_object().expect("item") {
                let id = details["operationId"].as_str().expect("operationId");
                let operation = Operation::ALL
                    .iter()
                    .find(|operation| operation.id() == id)
                    .unwrap_or_else(|| panic!("{id} is not an operation"));
                let (route_method, route_path) = operation.route();
                assert_eq!(route_method.as_str(), method.to_uppercase(), "{id}");
                assert_eq!(format!("/api/v1{route_path}"), *path, "{id}");
                assert!(seen.insert(id), "{id} twice");
            }
        }
        assert_eq!(seen.len(), Operation::ALL.len());
    }

    #[test]
    fn only_admins_touch_accounts_and_integrations_only_write_leads() {
        for operation in Operation::ALL.iter().filter(|op| op.accounts()) {
            assert!(operation.allowed(Role::Admin));
            for role in [Role::Manager, Role::Rep, Role::Integration, Role::Reporting] {
                assert!(!operation.allowed(role), "{operation:?} {role:?}");
            }
        }
        let integration: Vec<_> = Operation::ALL
            .iter()
            .filter(|op| !op.public() && op.allowed(Role::Integration))
            .collect();
        assert_eq!(
            integration,
            [
                &Operation::CreateLead,
                &Operation::CreateLeads,
                &Operation::RecordFeedback
            ]
        );
    }
}
