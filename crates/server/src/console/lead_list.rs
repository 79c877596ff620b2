//! The lead list: filters (the dashboard's drill-downs land here), sorting, a total count,
//! columns a user chooses (remembered in their browser), and assigning ticked leads — or every
//! lead the filter matches — to a rep in one go.

use std::collections::HashMap;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use store::{LeadFilter, LeadOrder};

use super::{Frame, LeadLine, Viewer, act, line, notice_text, render, rep_names, viewer};
use crate::AppState;
use crate::api::access;
use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::Body;

/// Leads on one page.
const PAGE: i64 = 50;
/// Leads one "assign all matching" acts on at most.
pub(super) const BULK_LIMIT: i64 = 500;

/// The list's query string. Every value is text and read leniently: a value that does not
/// parse is left out of the filter (and out of the chips), never a failed page.
#[derive(Clone, Debug, Default, Deserialize)]
pub(super) struct LeadsQuery {
    q: Option<String>,
    status: Option<String>,
    owner: Option<String>,
    team: Option<String>,
    source: Option<String>,
    priority: Option<String>,
    tag: Option<String>,
    /// `overdue`, `missed` (the SLA ran out at some point) or `untouched`.
    sla: Option<String>,
    /// `1`: only the hold queue.
    held: Option<String>,
    // Drill-downs from the dashboard: microsecond bounds and narrower sets.
    from: Option<String>,
    to: Option<String>,
    closed_from: Option<String>,
    closed_to: Option<String>,
    handled_by: Option<String>,
    open: Option<String>,
    overdue: Option<String>,
    idle: Option<String>,
    responded: Option<String>,
    owned: Option<String>,
    sla_missed: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

fn flag(value: &Option<String>) -> bool {
    value.as_deref() == Some("1")
}

fn micros(value: &Option<String>) -> Option<i64> {
    given(value)?.parse().ok()
}

impl LeadsQuery {
    /// The store filter this query asks for, before the viewer's scope narrows it.
    fn filter(&self, now: i64) -> LeadFilter {
        let sla = given(&self.sla).unwrap_or_default();
        let idle_days = given(&self.idle)
            .and_then(|days| days.parse::<i64>().ok())
            .filter(|days| (1..=3650).contains(days))
            .or((sla == "untouched").then_some(super::dashboard::UNTOUCHED_DAYS));
        LeadFilter {
            q: given(&self.q),
            status: given(&self.status)
                .filter(|status| engine::LeadStatus::parse(status).is_some()),
            owner_id: given(&self.owner),
            team_id: given(&self.team),
            source: given(&self.source),
            priority: given(&self.priority).filter(|priority| {
                ["urgent", "high", "normal", "low"].contains(&priority.as_str())
            }),
            tag: given(&self.tag),
            held: flag(&self.held),
            created_from: micros(&self.from),
            created_to: micros(&self.to),
            closed_from: micros(&self.closed_from),
            closed_to: micros(&self.closed_to),
            handled_by: given(&self.handled_by),
            open: flag(&self.open)
                || idle_days.is_some()
                || flag(&self.overdue)
                || sla == "overdue",
            overdue_at: (flag(&self.overdue) || sla == "overdue").then_some(now),
            idle_before: idle_days.map(|days| now - days * 86_400_000_000),
            responded: flag(&self.responded),
            owned: flag(&self.owned),
            sla_missed: flag(&self.sla_missed) || sla == "missed",
            order: LeadOrder::parse(given(&self.sort).as_deref().unwrap_or_default())
                .unwrap_or_default(),
            ..LeadFilter::default()
        }
    }

    /// The query string of the filter alone (no sort, page or notice).
    fn filter_string(&self) -> String {
        let pairs = [
            ("q", &self.q),
            ("status", &self.status),
            ("owner", &self.owner),
            ("team", &self.team),
            ("source", &self.source),
            ("priority", &self.priority),
            ("tag", &self.tag),
            ("sla", &self.sla),
            ("held", &self.held),
            ("from", &self.from),
            ("to", &self.to),
            ("closed_from", &self.closed_from),
            ("closed_to", &self.closed_to),
            ("handled_by", &self.handled_by),
            ("open", &self.open),
            ("overdue", &self.overdue),
            ("idle", &self.idle),
            ("responded", &self.responded),
            ("owned", &self.owned),
            ("sla_missed", &self.sla_missed),
        ];
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            if let Some(value) = given(value) {
                query.append_pair(name, &value);
            }
        }
        query.finish()
    }
}

/// A column the viewer may show or hide: `(key, heading)`.
const COLUMNS: [&str; 8] = [
    "company",
    "region",
    "source",
    "priority",
    "status",
    "owner",
    "created",
    "last_touch",
];

/// Columns a click on their heading sorts by, with the order's code.
const SORTABLE: [(&str, &str); 6] = [
    ("source", "source"),
    ("priority", "priority"),
    ("status", "status"),
    ("owner", "owner"),
    ("created", "created"),
    ("last_touch", "last_activity"),
];

#[derive(Template)]
#[template(path = "leads.html")]
struct LeadsPage {
    frame: Frame,
    /// Only the hold queue.
    held: bool,
    q: String,
    status: String,
    statuses: Vec<&'static str>,
    rows: Vec<LeadLine>,
    total: i64,
    next: String,
    previous: String,
    owner: String,
    owners: Vec<(String, String)>,
    team: String,
    teams: Vec<(String, String)>,
    source: String,
    priority: String,
    tag: String,
    sla: String,
    /// What the drill-down parameters narrow the list to, in words.
    chips: Vec<String>,
    /// `(key, heading, link that sorts by it or empty, "↑"/"↓"/"")`.
    columns: Vec<(&'static str, String, String, &'static str)>,
    /// The filter as a query string, for the "assign all matching" form.
    filter: String,
    /// Whom ticked leads can be assigned to (managers and admins).
    assignable: Vec<(String, String)>,
    bulk_limit: i64,
}

pub(super) async fn page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LeadsQuery>,
) -> Response {
    let viewer = match viewer(&app, &headers).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match list_page(&app, &viewer, query).await {
        Ok(page) => render(page),
        Err(error) => error.into_response(),
    }
}

async fn list_page(
    app: &AppState,
    viewer: &Viewer,
    query: LeadsQuery,
) -> Result<LeadsPage, ApiError> {
    let t = viewer.t;
    let now = chrono::Utc::now().timestamp_micros();
    let mut filter = query.filter(now);
    access::scope(app, &viewer.caller, &mut filter).await?;
    let total = app.store.count_leads(&filter).await?;
    let page: i64 = given(&query.page)
        .and_then(|page| page.parse().ok())
        .filter(|page| *page >= 1)
        .unwrap_or(1);
    filter.limit = PAGE + 1;
    if filter.order == LeadOrder::Newest {
        filter.before_id = given(&query.cursor);
    } else {
        filter.offset = (page - 1) * PAGE;
    }
    let mut rows = app.store.list_leads(&filter).await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let names = rep_names(app).await?;
    let filter_string = query.filter_string();
    let sort = filter.order.code();
    let link = |extra: &str| {
        let mut link = format!("/leads?{filter_string}");
        if !filter_string.is_empty() {
            link.push('&');
        }
        link.push_str(extra);
        link
    };
    let next = match (more, rows.last()) {
        (true, Some(last)) if filter.order == LeadOrder::Newest => {
            link(&format!("cursor={}", last.id))
        }
        (true, _) => link(&format!("sort={sort}&page={}", page + 1)),
        _ => String::new(),
    };
    let previous = if filter.order != LeadOrder::Newest && page > 1 {
        link(&format!("sort={sort}&page={}", page - 1))
    } else {
        String::new()
    };
    let columns = COLUMNS
        .iter()
        .map(|key| {
            let heading = match *key {
                "last_touch" => t.t("col_last_touch").to_owned(),
                "priority" => t.label("priority").to_owned(),
                other => t.t(other).to_owned(),
            };
            let order = SORTABLE
                .iter()
                .find(|(column, _)| column == key)
                .map(|(_, order)| *order);
            let (href, mark) = match order {
                None => (String::new(), ""),
                // Created sorts both ways; the others one way (their natural order).
                Some("created") if sort == "created" => (link("sort=-created"), "↓"),
                Some("created") if sort == "-created" => (link("sort=created"), "↑"),
                Some(order) if order == sort => (String::new(), "↓"),
                Some(order) => (link(&format!("sort={order}")), ""),
            };
            (*key, heading, href, mark)
        })
        .collect();
    let teams = crate::reports::teams_in_reach(app, &viewer.caller).await?;
    let chips = chips(viewer, &query, &names);
    let mut lines: Vec<LeadLine> = rows.iter().map(|row| line(viewer, row, &names)).collect();
    // Overdue by the same definition the dashboard counts.
    for (line, row) in lines.iter_mut().zip(&rows) {
        line.overdue = row.overdue_at(now);
    }
    Ok(LeadsPage {
        frame: viewer.frame(
            t.t("leads"),
            "leads",
            notice_text(&t, query.notice.as_deref()),
        ),
        held: filter.held,
        q: given(&query.q).unwrap_or_default(),
        status: filter.status.clone().unwrap_or_default(),
        statuses: engine::LeadStatus::ALL
            .map(engine::LeadStatus::as_str)
            .to_vec(),
        rows: lines,
        total,
        next,
        previous,
        owner: given(&query.owner).unwrap_or_default(),
        owners: {
            let mut owners: Vec<(String, String)> = names.clone().into_iter().collect();
            owners.sort_by(|a, b| a.1.cmp(&b.1));
            owners
        },
        team: given(&query.team).unwrap_or_default(),
        teams,
        source: given(&query.source).unwrap_or_default(),
        priority: filter.priority.clone().unwrap_or_default(),
        tag: given(&query.tag).unwrap_or_default(),
        sla: given(&query.sla).unwrap_or_default(),
        chips,
        columns,
        filter: filter_string,
        assignable: if matches!(viewer.caller.role, Role::Admin | Role::Manager) {
            super::reps_in_reach(app, viewer, &names).await?
        } else {
            Vec::new()
        },
        bulk_limit: BULK_LIMIT,
    })
}

/// The drill-down parameters the form does not show, in words.
fn chips(viewer: &Viewer, query: &LeadsQuery, names: &HashMap<String, String>) -> Vec<String> {
    let t = viewer.t;
    let day = |micros: i64| super::dashboard::day_label(micros, viewer.zone);
    let mut chips = Vec::new();
    let range = |from: Option<i64>, to: Option<i64>| match (from, to) {
        (Some(from), Some(to)) => Some(format!("{} – {}", day(from), day(to - 1))),
        (Some(from), None) => Some(format!("≥ {}", day(from))),
        (None, Some(to)) => Some(format!("≤ {}", day(to - 1))),
        (None, None) => None,
    };
    if let Some(range) = range(micros(&query.from), micros(&query.to)) {
        chips.push(format!("{}: {range}", t.t("created")));
    }
    if let Some(range) = range(micros(&query.closed_from), micros(&query.closed_to)) {
        chips.push(format!("{}: {range}", t.t("closed")));
    }
    if let Some(rep) = given(&query.handled_by) {
        chips.push(format!(
            "{}: {}",
            t.t("handled_by"),
            names.get(&rep).cloned().unwrap_or(rep)
        ));
    }
    for (value, key) in [
        (&query.open, "col_open"),
        (&query.overdue, "col_overdue"),
        (&query.responded, "stage_contacted"),
        (&query.owned, "assigned"),
        (&query.sla_missed, "sla_missed"),
    ] {
        if flag(value) {
            chips.push(t.t(key).to_owned());
        }
    }
    if let Some(days) = given(&query.idle).and_then(|days| days.parse::<i64>().ok()) {
        chips.push(t.t("idle_days").replace("{n}", &days.to_string()));
    }
    chips
}

/// `POST /leads/bulk-assign`: the ticked leads (`lead_<id>` fields), or with `all=1` every lead
/// the list's filter matches (at most [`BULK_LIMIT`]), assigned to `rep_id` — each through the
/// same operation as assigning one, with its own authority check.
pub(super) async fn bulk_assign(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let handle = app.clone();
    act(&app, &headers, &body, move |viewer, fields| async move {
        let filter_string = fields.get("filter").cloned().unwrap_or_default();
        // Back to the list as it was filtered (a filter that is not clean is refused below).
        let clean = crate::text::clean_address(&filter_string);
        let to = if filter_string.is_empty() || !clean {
            "/leads".to_owned()
        } else {
            format!("/leads?{filter_string}")
        };
        let outcome = async {
            let ids: Vec<String> = if fields.get("all").map(String::as_str) == Some("1") {
                let not_a_filter =
                    || ApiError::invalid("invalid_value", "filter", "not a lead filter");
                // The filter rides in a form field, past the address check every query string
                // gets: the same check here (no control characters once decoded).
                if !clean {
                    return Err(not_a_filter());
                }
                let uri: axum::http::Uri = format!("/leads?{filter_string}")
                    .parse()
                    .map_err(|_| not_a_filter())?;
                let Query(query) =
                    Query::<LeadsQuery>::try_from_uri(&uri).map_err(|_| not_a_filter())?;
                let mut filter = query.filter(chrono::Utc::now().timestamp_micros());
                access::scope(&handle, &viewer.caller, &mut filter).await?;
                filter.limit = BULK_LIMIT;
                handle
                    .store
                    .list_leads(&filter)
                    .await?
                    .into_iter()
                    .map(|row| row.id)
                    .collect()
            } else {
                let mut ticked = super::ticked_leads(&fields);
                ticked.truncate(BULK_LIMIT as usize);
                ticked
            };
            if ids.is_empty() {
                return Err(ApiError::invalid(
                    "nothing_ticked",
                    "leads",
                    "tick some leads, or all that match",
                ));
            }
            let input = crate::api::leads::AssignInput {
                rep_id: fields.get("rep_id").cloned().unwrap_or_default(),
                reason: fields
                    .get("reason")
                    .cloned()
                    .filter(|reason| !reason.trim().is_empty()),
                override_collision: false,
            };
            // Each lead on its own: one the viewer may not touch, or that is closed, fails
            // alone; the first failure is what the notice names.
            let mut first_error = None;
            for id in ids {
                let assigned = crate::api::leads::assign_lead(
                    State(handle.clone()),
                    Extension(viewer.caller.clone()),
                    Path(id),
                    Body(input.clone()),
                )
                .await;
                match assigned {
                    // Already where it was asked to go: nothing to do.
                    Err(error) if error.code == "already_owner" => {}
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                    Ok(_) => {}
                }
            }
            first_error.map_or(Ok(()), Err)
        }
        .await;
        (to, outcome)
    })
    .await
}
