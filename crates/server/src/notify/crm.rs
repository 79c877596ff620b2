//! CRM connectors: when a lead is assigned, reassigned, reclaimed, claimed or closed, the lead
//! is created or updated in the team's CRM with its owner mapped to the CRM's user — through the
//! outbox like every notification (retries, backoff, dead letters, rate limits), and keyed by
//! Leadroute's lead id in an external-id field, so a replayed delivery updates the same record.
//!
//! - Salesforce: OAuth 2.0 client credentials, then `PATCH
//!   /services/data/v60.0/sobjects/Lead/{external id field}/{lead id}` (upsert).
//! - HubSpot: a private app's token, `POST /crm/v3/objects/contacts/batch/upsert` by a unique
//!   property, owner in `hubspot_owner_id`.
//! - 纷享销客: `corpAccessToken/get/V2`, then `crm/v2/data/query` by the external-id field and
//!   `data/update` or `data/create` of `LeadsObj`.
//! - 简道云: the v5 data API with an API key, `data/list` by the external-id widget, then
//!   `data/update` or `data/create`.
//!
//! A CRM refusing the credentials (401, or a refused token request) marks the connector as
//! needing attention and its deliveries wait; a rate limit waits a minute.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::apps::{Tokens, base, failed, json_of, refused};
use super::channel::{ChannelDocument, Outgoing, SendError};
use crate::error::ApiError;

/// The connector kinds.
pub const KINDS: [&str; 4] = ["salesforce", "hubspot", "fxiaoke", "jiandaoyun"];

/// The events a connector writes on when it names none.
pub const EVENTS: [&str; 6] = [
    "lead.assigned",
    "lead.reassigned",
    "lead.reclaimed",
    "lead.claimed",
    "lead.won",
    "lead.lost",
];

pub fn is_crm(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// Where and how a connector writes leads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrmDocument {
    /// Salesforce: the object (`Lead`); 纷享销客: the object's API name (`LeadsObj`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The CRM field holding Leadroute's lead id, which upserts go by: Salesforce
    /// `Leadroute_Id__c` (an External ID field), HubSpot `leadroute_id` (a unique property),
    /// 纷享销客 `leadroute_id__c`; 简道云: the widget (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_field: Option<String>,
    /// 简道云: the app and the form (entry) records go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// 纷享销客: the openUserId calls are made as (`currentOpenUserId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Lead field (`name`, `company`, `phone`, `email`, `source`, `status`, `owner`, `region`,
    /// `industry`, `amount`) → CRM field, over the connector's defaults; `""` leaves a field
    /// out. 简道云 has no defaults: its widgets are named per form.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

/// The lead fields a connector can write.
const LEAD_FIELDS: [&str; 10] = [
    "name", "company", "phone", "email", "source", "status", "owner", "region", "industry",
    "amount",
];

fn defaults(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "salesforce" => &[
            ("name", "LastName"),
            ("company", "Company"),
            ("phone", "Phone"),
            ("email", "Email"),
            ("source", "LeadSource"),
            ("owner", "OwnerId"),
        ],
        "hubspot" => &[
            ("name", "firstname"),
            ("company", "company"),
            ("phone", "phone"),
            ("email", "email"),
            ("owner", "hubspot_owner_id"),
        ],
        "fxiaoke" => &[
            ("name", "name"),
            ("company", "company"),
            ("phone", "mobile"),
            ("email", "email"),
            ("owner", "owner"),
        ],
        _ => &[],
    }
}

fn external_id_field(channel: &ChannelDocument) -> String {
    let given = channel
        .crm
        .as_ref()
        .and_then(|crm| crm.external_id_field.clone());
    given.unwrap_or_else(|| {
        match channel.kind.as_str() {
            "salesforce" => "Leadroute_Id__c",
            "hubspot" => "leadroute_id",
            _ => "leadroute_id__c",
        }
        .to_owned()
    })
}

/// The connector's settings are complete.
pub fn check(channel: &ChannelDocument) -> Result<(), ApiError> {
    let crm = channel.crm.clone().unwrap_or_default();
    for field in crm.fields.keys() {
        if !LEAD_FIELDS.contains(&field.as_str()) {
            return Err(ApiError::invalid(
                "invalid_value",
                format!("crm.fields.{field}"),
                format!("{field:?} is not a lead field a connector writes"),
            ));
        }
    }
    let is_identifier = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if let Some(field) = &crm.external_id_field
        && !is_identifier(field)
    {
        return Err(ApiError::invalid(
            "invalid_value",
            "crm.external_id_field",
            "a field's API name",
        ));
    }
    if channel.kind == "jiandaoyun" {
        for (field, value) in [
            ("crm.app_id", &crm.app_id),
            ("crm.entry_id", &crm.entry_id),
            ("crm.external_id_field", &crm.external_id_field),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "missing_field",
                    field,
                    "简道云 needs the app, the form and the widget that keeps the lead id",
                ));
            }
        }
        if crm.fields.is_empty() {
            return Err(ApiError::invalid(
                "missing_field",
                "crm.fields",
                "map lead fields to the form's widgets",
            ));
        }
    }
    if channel.kind == "fxiaoke" && crm.operator.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "missing_field",
            "crm.operator",
            "纷享销客 needs the openUserId its calls are made as",
        ));
    }
    Ok(())
}

/// The CRM's own rate limits: `(window in seconds, sends per window)`.
pub fn rate_limits(kind: &str) -> Vec<(i64, i64)> {
    match kind {
        // Private apps: 100 requests per 10 seconds (the lowest tier).
        "hubspot" => vec![(10, 100)],
        // The data API: 5 requests a second per key; an upsert is two.
        "jiandaoyun" => vec![(1, 2)],
        _ => vec![(1, 10)],
    }
}

/// The record to write: each mapped lead field's value, the owner as the CRM's user.
fn record(
    channel: &ChannelDocument,
    outgoing: &Outgoing<'_>,
) -> Result<Map<String, Value>, SendError> {
    let lead = outgoing
        .lead
        .ok_or_else(|| failed("the event has no lead"))?;
    let document: Value = serde_json::from_str(&lead.document).unwrap_or(Value::Null);
    let text = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut fields: BTreeMap<String, String> = defaults(&channel.kind)
        .iter()
        .map(|(field, crm)| ((*field).to_owned(), (*crm).to_owned()))
        .collect();
    if let Some(crm) = &channel.crm {
        fields.extend(crm.fields.clone());
    }
    let mut record = Map::new();
    for (field, target) in fields.iter().filter(|(_, target)| !target.is_empty()) {
        let value = match field.as_str() {
            "owner" => match (&lead.owner_id, outgoing.owner) {
                (None, _) => continue,
                (Some(owner), Some(rep)) if rep.id == *owner => {
                    let id = rep.contact.crm.get(&channel.kind).cloned().ok_or_else(|| {
                        failed(format!(
                            "rep {owner} has no {} user id (contact.crm.{})",
                            channel.kind, channel.kind
                        ))
                    })?;
                    // 纷享销客 takes owners as a list of openUserIds.
                    if channel.kind == "fxiaoke" {
                        json!([id])
                    } else {
                        json!(id)
                    }
                }
                (Some(owner), _) => return Err(failed(format!("rep {owner} is not known"))),
            },
            "phone" => lead.phone.clone().map(Value::String).unwrap_or(Value::Null),
            "email" => lead.email.clone().map(Value::String).unwrap_or(Value::Null),
            "source" => lead
                .source
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
            "status" => json!(lead.status),
            "amount" => lead
                .amount
                .map(|amount| json!(amount))
                .unwrap_or(Value::Null),
            name => text(name).map(Value::String).unwrap_or(Value::Null),
        };
        if !value.is_null() {
            record.insert(target.clone(), value);
        }
    }
    // Salesforce requires a last name and a company on a Lead.
    if channel.kind == "salesforce" {
        for required in ["LastName", "Company"] {
            record
                .entry(required)
                .or_insert_with(|| json!("[not provided]"));
        }
    }
    Ok(record)
}

/// Turns a CRM's non-success answer into the delivery's error.
fn answered(kind: &str, status: u16, answer: &Value) -> SendError {
    let detail: String = answer.to_string().chars().take(300).collect();
    let message = format!("{kind} answered HTTP {status}: {detail}");
    let limit = status == 429
        || (status == 403 && detail.contains("REQUEST_LIMIT_EXCEEDED"))
        || detail.contains("RATE_LIMIT");
    if status == 401 {
        return refused(message);
    }
    SendError {
        rate_limited: limit,
        ..failed(message)
    }
}

/// Writes the event's lead to the CRM; `Ok` carries the CRM's answer for the delivery log.
pub async fn send(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
    outgoing: &Outgoing<'_>,
) -> Result<String, SendError> {
    let record = record(channel, outgoing)?;
    let lead_id = outgoing
        .lead
        .map(|lead| lead.id.clone())
        .unwrap_or_default();
    match channel.kind.as_str() {
        "salesforce" => salesforce(client, tokens, channel, &lead_id, record).await,
        "hubspot" => hubspot(client, channel, &lead_id, record).await,
        "fxiaoke" => fxiaoke(client, tokens, channel, &lead_id, record).await,
        _ => jiandaoyun(client, channel, &lead_id, record).await,
    }
}

/// The connector test: the CRM lets the credentials in and the target exists. Writes nothing.
pub async fn test(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
) -> Result<String, SendError> {
    let crm = channel.crm.clone().unwrap_or_default();
    match channel.kind.as_str() {
        "salesforce" => {
            let object = crm.object.unwrap_or_else(|| "Lead".into());
            let (token, instance) = salesforce_token(client, tokens, channel).await?;
            let url = format!("{instance}/services/data/v60.0/sobjects/{object}/describe");
            let (status, answer) =
                json_of(client.get(url).bearer_auth(token), "salesforce describe").await?;
            let field = external_id_field(channel);
            let has_field = answer["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|item| {
                    item["name"].as_str() == Some(field.as_str())
                        && item["externalId"].as_bool() == Some(true)
                });
            match (status, has_field) {
                (200, true) => Ok(format!("{object} has the external id field {field}")),
                (200, false) => Err(failed(format!(
                    "{object} has no external id field {field}; create it in Salesforce"
                ))),
                _ => Err(answered("salesforce", status, &answer)),
            }
        }
        "hubspot" => {
            let field = external_id_field(channel);
            let url = format!(
                "{}/crm/v3/properties/contacts/{field}",
                base(channel, "https://api.hubapi.com")
            );
            let request = client
                .get(url)
                .bearer_auth(channel.secret.as_deref().unwrap_or_default());
            let (status, answer) = json_of(request, "hubspot property").await?;
            match (status, answer["hasUniqueValue"].as_bool()) {
                (200, Some(true)) => Ok(format!("contacts have the unique property {field}")),
                (200, _) => Err(failed(format!(
                    "the contact property {field} must have unique values"
                ))),
                _ => Err(answered("hubspot", status, &answer)),
            }
        }
        _ => {
            // Reading the record of a lead id that cannot exist proves the rest.
            let probe = format!("leadroute-test-{}", uuid::Uuid::now_v7().simple());
            if channel.kind == "fxiaoke" {
                fxiaoke_find(client, tokens, channel, &probe).await?;
            } else {
                jiandaoyun_find(client, channel, &probe).await?;
            }
            Ok("the credentials are accepted".into())
        }
    }
}

/// The OAuth 2.0 client-credentials token and the org's instance address.
async fn salesforce_token(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
) -> Result<(String, String), SendError> {
    let _fetching = match tokens.cached(channel) {
        Some(_) => None,
        None => Some(tokens.fetching().await),
    };
    let answer = match tokens.cached(channel) {
        Some(answer) => answer,
        None => {
            let url = format!(
                "{}/services/oauth2/token",
                base(channel, "https://login.salesforce.com")
            );
            let request = client.post(url).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", channel.app_id.as_deref().unwrap_or_default()),
                (
                    "client_secret",
                    channel.secret.as_deref().unwrap_or_default(),
                ),
            ]);
            let (status, answer) = json_of(request, "salesforce token").await?;
            if status >= 500 {
                return Err(failed(format!("salesforce token answered HTTP {status}")));
            }
            if status >= 400 || answer["access_token"].as_str().is_none() {
                return Err(refused(format!(
                    "salesforce refused the connected app's credentials (HTTP {status}, {})",
                    answer["error"].as_str().unwrap_or("no token")
                )));
            }
            // The answer names no lifetime; sessions last at least 15 minutes.
            tokens.keep(channel, answer.clone(), Duration::from_secs(15 * 60));
            answer
        }
    };
    let token = answer["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let instance = answer["instance_url"]
        .as_str()
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| base(channel, "https://login.salesforce.com"));
    Ok((token, instance))
}

async fn salesforce(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
    lead_id: &str,
    record: Map<String, Value>,
) -> Result<String, SendError> {
    let object = channel
        .crm
        .as_ref()
        .and_then(|crm| crm.object.clone())
        .unwrap_or_else(|| "Lead".into());
    let field = external_id_field(channel);
    let mut retried = false;
    loop {
        let (token, instance) = salesforce_token(client, tokens, channel).await?;
        let url = format!("{instance}/services/data/v60.0/sobjects/{object}/{field}/{lead_id}");
        let request = client
            .patch(url)
            .bearer_auth(token)
            .json(&Value::Object(record.clone()));
        let (status, answer) = json_of(request, "salesforce upsert").await?;
        match status {
            200 | 201 | 204 => {
                let id = answer["id"].as_str().unwrap_or("-");
                let verb = if status == 201 { "created" } else { "updated" };
                return Ok(format!("{verb} {object} {id}"));
            }
            // The session expired: one new token, then the answer stands.
            401 if !retried => {
                tokens.forget(channel);
                retried = true;
            }
            _ => return Err(answered("salesforce", status, &answer)),
        }
    }
}

async fn hubspot(
    client: &reqwest::Client,
    channel: &ChannelDocument,
    lead_id: &str,
    record: Map<String, Value>,
) -> Result<String, SendError> {
    let url = format!(
        "{}/crm/v3/objects/contacts/batch/upsert",
        base(channel, "https://api.hubapi.com")
    );
    let body = json!({"inputs": [{
        "idProperty": external_id_field(channel),
        "id": lead_id,
        "properties": record,
    }]});
    let request = client
        .post(url)
        .bearer_auth(channel.secret.as_deref().unwrap_or_default())
        .json(&body);
    let (status, answer) = json_of(request, "hubspot upsert").await?;
    let result = &answer["results"][0];
    if matches!(status, 200 | 201) && result["id"].is_string() {
        let verb = if result["new"].as_bool() == Some(true) {
            "created"
        } else {
            "updated"
        };
        return Ok(format!(
            "{verb} contact {}",
            result["id"].as_str().unwrap_or("-")
        ));
    }
    Err(answered("hubspot", status, &answer))
}

/// 纷享销客's token (cached) and the record already written for the lead, if any.
async fn fxiaoke_find(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
    lead_id: &str,
) -> Result<(Value, Option<String>), SendError> {
    let api = base(channel, "https://open.fxiaoke.com");
    let crm = channel.crm.clone().unwrap_or_default();
    let object = crm.object.clone().unwrap_or_else(|| "LeadsObj".into());
    let mut retried = false;
    loop {
        let fetching = match tokens.cached(channel) {
            Some(_) => None,
            None => Some(tokens.fetching().await),
        };
        let answer = match tokens.cached(channel) {
            Some(answer) => answer,
            None => {
                let request = client
                    .post(format!("{api}/cgi/corpAccessToken/get/V2"))
                    .json(&json!({
                        "appId": channel.app_id,
                        "appSecret": channel.secret,
                        "permanentCode": channel.token,
                    }));
                let (status, answer) = json_of(request, "fxiaoke corpAccessToken").await?;
                if status >= 500 {
                    return Err(failed(format!("fxiaoke token answered HTTP {status}")));
                }
                if answer["errorCode"].as_i64() != Some(0) {
                    return Err(refused(format!(
                        "纷享销客 refused the application's credentials (error {})",
                        answer["errorCode"]
                    )));
                }
                let seconds = answer["expiresIn"].as_u64().unwrap_or(7200);
                tokens.keep(channel, answer.clone(), Duration::from_secs(seconds));
                answer
            }
        };
        drop(fetching);
        let auth = json!({
            "corpAccessToken": answer["corpAccessToken"],
            "corpId": answer["corpId"],
            "currentOpenUserId": crm.operator,
            "data": {"dataObjectApiName": object, "search_query_info": {
                "limit": 1, "offset": 0,
                "filters": [{"field_name": external_id_field(channel), "field_values": [lead_id], "operator": "EQ"}],
            }},
        });
        let request = client
            .post(format!("{api}/cgi/crm/v2/data/query"))
            .json(&auth);
        let (_, found) = json_of(request, "fxiaoke query").await?;
        let code = found["errorCode"].as_i64().unwrap_or(-1);
        if code == 0 {
            let existing = found["data"]["dataList"][0]["_id"]
                .as_str()
                .map(str::to_owned);
            return Ok((auth, existing));
        }
        // A stale token reads as an error like any other: one fresh token, then it stands.
        if retried {
            return Err(failed(format!(
                "纷享销客 query answered error {code}: {}",
                found["errorMessage"].as_str().unwrap_or("")
            )));
        }
        tokens.forget(channel);
        retried = true;
    }
}

async fn fxiaoke(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
    lead_id: &str,
    mut record: Map<String, Value>,
) -> Result<String, SendError> {
    let api = base(channel, "https://open.fxiaoke.com");
    let object = channel
        .crm
        .as_ref()
        .and_then(|crm| crm.object.clone())
        .unwrap_or_else(|| "LeadsObj".into());
    let (mut body, existing) = fxiaoke_find(client, tokens, channel, lead_id).await?;
    record.insert("dataObjectApiName".into(), json!(object));
    record.insert(external_id_field(channel), json!(lead_id));
    let (path, verb) = match &existing {
        Some(id) => {
            record.insert("_id".into(), json!(id));
            ("/cgi/crm/v2/data/update", "updated")
        }
        None => ("/cgi/crm/v2/data/create", "created"),
    };
    body["data"] = json!({"object_data": record});
    let request = client.post(format!("{api}{path}")).json(&body);
    let (status, written) = json_of(request, "fxiaoke write").await?;
    if written["errorCode"].as_i64() == Some(0) {
        let id = existing
            .or_else(|| written["dataId"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".into());
        return Ok(format!("{verb} {object} {id}"));
    }
    Err(answered("fxiaoke", status, &written))
}

fn jiandaoyun_call(
    client: &reqwest::Client,
    channel: &ChannelDocument,
    path: &str,
    extra: Value,
) -> reqwest::RequestBuilder {
    let crm = channel.crm.clone().unwrap_or_default();
    let mut body = json!({"app_id": crm.app_id, "entry_id": crm.entry_id});
    for (name, value) in extra.as_object().into_iter().flatten() {
        body[name] = value.clone();
    }
    client
        .post(format!(
            "{}/api/v5/app/entry/data/{path}",
            base(channel, "https://api.jiandaoyun.com")
        ))
        .bearer_auth(channel.secret.as_deref().unwrap_or_default())
        .json(&body)
}

/// The 简道云 record already written for the lead, if any.
async fn jiandaoyun_find(
    client: &reqwest::Client,
    channel: &ChannelDocument,
    lead_id: &str,
) -> Result<Option<String>, SendError> {
    let filter = json!({"limit": 1, "filter": {"rel": "and", "cond": [
        {"field": external_id_field(channel), "type": "text", "method": "eq", "value": [lead_id]},
    ]}});
    let request = jiandaoyun_call(client, channel, "list", filter);
    let (status, found) = json_of(request, "jiandaoyun list").await?;
    if status != 200 {
        return Err(answered("jiandaoyun", status, &found));
    }
    Ok(found["data"][0]["_id"].as_str().map(str::to_owned))
}

async fn jiandaoyun(
    client: &reqwest::Client,
    channel: &ChannelDocument,
    lead_id: &str,
    record: Map<String, Value>,
) -> Result<String, SendError> {
    let existing = jiandaoyun_find(client, channel, lead_id).await?;
    // Each widget's value is wrapped: `{"value": …}`.
    let mut data: Map<String, Value> = record
        .into_iter()
        .map(|(widget, value)| (widget, json!({"value": value})))
        .collect();
    data.insert(external_id_field(channel), json!({"value": lead_id}));
    let (request, verb) = match &existing {
        Some(id) => (
            jiandaoyun_call(
                client,
                channel,
                "update",
                json!({"data_id": id, "data": data}),
            ),
            "updated",
        ),
        None => (
            jiandaoyun_call(client, channel, "create", json!({"data": data})),
            "created",
        ),
    };
    let (status, written) = json_of(request, "jiandaoyun write").await?;
    if status == 200 {
        let id = existing
            .or_else(|| written["data"]["_id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "-".into());
        return Ok(format!("{verb} record {id}"));
    }
    Err(answered("jiandaoyun", status, &written))
}
