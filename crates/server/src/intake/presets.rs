//! Intake presets: the lead-form pushes whose formats their platforms publish. A preset says
//! how a delivery is authenticated, where each lead field is in it, what in it is the platform's
//! delivery id, which deliveries carry no lead (a test lead, an edit of a record), and how the
//! platform wants its answer. A source made from a preset needs only the platform's
//! credentials; a mapping given with it overrides the preset's field by field.
//!
//! Left out for want of a published format (docs/integrations.md says so): 巨量引擎 / 飞鱼,
//! 腾讯广告, 百度营销 and 快手 / 磁力引擎. Their pushes can still come in through a generic
//! `hmac_sha256` or `token` source with a mapping, or through their own CRM export.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::error::ApiError;

/// The presets a source may name.
pub const NAMES: [&str; 4] = ["web_form", "jiandaoyun", "meta_lead_ads", "google_ads"];

/// Meta's Graph API when a source does not name another (a pinned version).
pub const GRAPH_URL: &str = "https://graph.facebook.com/v21.0";

/// A platform's lead push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// A plain web form posting `application/x-www-form-urlencoded` (or JSON) with `?token=`.
    WebForm,
    /// 简道云 data push: `X-JDY-Signature`, `op: data_create`.
    Jiandaoyun,
    /// Meta (Facebook / Instagram) Lead Ads: a `leadgen` page webhook, then the lead from the
    /// Graph API.
    MetaLeadAds,
    /// Google Ads lead form webhook with the form's `google_key`.
    GoogleAds,
}

fn paths(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(field, path)| ((*field).to_owned(), (*path).to_owned()))
        .collect()
}

impl Preset {
    pub fn parse(name: &str) -> Option<Preset> {
        Some(match name {
            "web_form" => Preset::WebForm,
            "jiandaoyun" => Preset::Jiandaoyun,
            "meta_lead_ads" => Preset::MetaLeadAds,
            "google_ads" => Preset::GoogleAds,
            _ => return None,
        })
    }

    /// The source's `auth`.
    pub fn auth(self) -> &'static str {
        match self {
            Preset::WebForm => "token",
            Preset::Jiandaoyun => "jdy",
            Preset::MetaLeadAds => "meta",
            Preset::GoogleAds => "google_key",
        }
    }

    /// The lead's `source` unless the source document sets another.
    pub fn label(self) -> &'static str {
        match self {
            Preset::WebForm => "官网表单",
            Preset::Jiandaoyun => "简道云",
            Preset::MetaLeadAds => "Meta Lead Ads",
            Preset::GoogleAds => "Google Ads",
        }
    }

    /// Where each lead field is in the record the preset makes of a delivery. `a|b` takes the
    /// first that is present.
    pub fn mapping(self) -> BTreeMap<String, String> {
        match self {
            // Common names of a hand-made form, in English and Chinese.
            Preset::WebForm => paths(&[
                ("name", "name|姓名|联系人"),
                ("phone", "phone|mobile|手机|手机号|电话"),
                ("email", "email|邮箱"),
                ("wechat", "wechat|微信"),
                ("company", "company|公司|公司名称"),
                ("region", "region|地区|省份"),
                ("campaign", "utm_campaign|campaign"),
                ("attributes.message", "message|留言|需求"),
            ]),
            // 简道云 sends each widget under its alias (字段别名) when one is set.
            Preset::Jiandaoyun => paths(&[
                ("name", "data.name|data.姓名|data.联系人"),
                ("phone", "data.phone|data.mobile|data.手机|data.电话"),
                ("email", "data.email|data.邮箱"),
                ("wechat", "data.wechat|data.微信"),
                ("company", "data.company|data.公司|data.公司名称"),
                ("region", "data.region|data.地区"),
            ]),
            // Meta's standard questions, by their field names.
            Preset::MetaLeadAds => paths(&[
                ("name", "fields.full_name|fields.first_name"),
                ("phone", "fields.phone_number|fields.work_phone_number"),
                ("email", "fields.email|fields.work_email"),
                ("company", "fields.company_name"),
                ("region", "fields.province|fields.state|fields.city"),
                ("campaign", "campaign_id"),
                ("attributes.job_title", "fields.job_title"),
                ("attributes.form_id", "form_id"),
                ("attributes.ad_id", "ad_id"),
            ]),
            // Google's column ids.
            Preset::GoogleAds => paths(&[
                ("name", "columns.FULL_NAME|columns.FIRST_NAME"),
                ("phone", "columns.PHONE_NUMBER|columns.WORK_PHONE"),
                ("email", "columns.EMAIL|columns.WORK_EMAIL"),
                ("company", "columns.COMPANY_NAME"),
                ("region", "columns.REGION|columns.CITY"),
                ("campaign", "campaign_id"),
                ("attributes.job_title", "columns.JOB_TITLE"),
                ("attributes.form_id", "form_id"),
                ("attributes.gclid", "gcl_id"),
            ]),
        }
    }
}

/// One lead in a delivery: the platform's id for it, and the record the mapping reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub delivery_id: Option<String>,
    pub body: Value,
}

/// What a delivery holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    Leads(Vec<Record>),
    /// Nothing to route; acknowledged with the reason (a test lead, an edited record).
    Ignored(&'static str),
}

fn malformed(message: &str) -> ApiError {
    ApiError::bad_request("malformed_body", message)
}

/// A Google Ads lead: `user_column_data` becomes `columns: {COLUMN_ID: value}`; the rest is
/// kept. A test lead (the form's "send test data") is acknowledged, not routed.
pub fn google(body: &Value) -> Result<Delivery, ApiError> {
    let object = body
        .as_object()
        .ok_or_else(|| malformed("expected a Google Ads lead object"))?;
    if object.get("is_test").and_then(Value::as_bool) == Some(true) {
        return Ok(Delivery::Ignored("test_lead"));
    }
    let lead_id = object
        .get("lead_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("missing_field", "lead_id", "a lead needs its id"))?;
    let mut columns = Map::new();
    for column in object
        .get("user_column_data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = column
            .get("column_id")
            .or_else(|| column.get("column_name"))
            .and_then(Value::as_str);
        if let (Some(key), Some(value)) = (key, column.get("string_value")) {
            columns.insert(key.to_owned(), value.clone());
        }
    }
    let mut record = object.clone();
    record.remove("user_column_data");
    record.remove("google_key");
    record.insert("columns".into(), Value::Object(columns));
    Ok(Delivery::Leads(vec![Record {
        delivery_id: Some(lead_id.to_owned()),
        body: Value::Object(record),
    }]))
}

/// A 简道云 push: a new record is a lead; edits, deletions and form changes are acknowledged.
pub fn jiandaoyun(body: &Value, delivery_id: Option<String>) -> Delivery {
    match body.get("op").and_then(Value::as_str) {
        Some("data_create") | None => Delivery::Leads(vec![Record {
            delivery_id,
            body: body.clone(),
        }]),
        Some(_) => Delivery::Ignored("not_a_new_record"),
    }
}

/// The leads a Meta `leadgen` notification names: `(leadgen_id, the change's value)`. Other
/// fields of the page's subscription are skipped.
pub fn meta_leads(body: &Value) -> Result<Vec<(String, Value)>, ApiError> {
    if body.get("object").and_then(Value::as_str) != Some("page") {
        return Err(malformed("expected a page notification"));
    }
    let mut leads = Vec::new();
    for entry in body
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for change in entry
            .get("changes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if change.get("field").and_then(Value::as_str) != Some("leadgen") {
                continue;
            }
            let value = change.get("value").cloned().unwrap_or(Value::Null);
            // Ids are strings in Meta's samples; numbers are read too.
            let id = match value.get("leadgen_id") {
                Some(Value::String(id)) => id.clone(),
                Some(Value::Number(id)) => id.to_string(),
                _ => continue,
            };
            leads.push((id, value));
        }
    }
    Ok(leads)
}

/// Meta's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body keyed with
/// the app secret.
pub fn meta_signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `appsecret_proof`: the hex HMAC-SHA256 of the access token keyed with the app secret, which
/// Graph API calls carry when the app requires it.
pub fn appsecret_proof(app_secret: &str, access_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Reads one lead from the Graph API (`GET /{leadgen_id}`) and makes the record the mapping
/// reads: `field_data` becomes `fields: {name: value}` (several values joined with ", ").
pub async fn meta_lead(
    client: &reqwest::Client,
    graph_url: &str,
    access_token: &str,
    app_secret: &str,
    leadgen_id: &str,
    change: &Value,
) -> Result<Value, ApiError> {
    let unavailable = |message: String| {
        ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "platform_unavailable",
            message,
        )
    };
    if !leadgen_id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "invalid_value",
            "leadgen_id",
            "a lead id is digits",
        ));
    }
    let url = format!("{}/{leadgen_id}", graph_url.trim_end_matches('/'));
    let response = client
        .get(url)
        .query(&[
            ("access_token", access_token),
            (
                "appsecret_proof",
                &appsecret_proof(app_secret, access_token),
            ),
            (
                "fields",
                "id,created_time,field_data,ad_id,adset_id,campaign_id,form_id,is_organic",
            ),
        ])
        .send()
        .await
        .map_err(|_| unavailable("the Graph API could not be reached".into()))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        // Meta's error object: `{"error": {"code": 190, "type": "OAuthException", ...}}`.
        let code = answer["error"]["code"].as_i64().unwrap_or_default();
        return Err(unavailable(format!(
            "the Graph API answered HTTP {} (error {code}); check the page access token",
            status.as_u16()
        )));
    }
    let mut fields = Map::new();
    for field in answer["field_data"].as_array().into_iter().flatten() {
        let Some(name) = field["name"].as_str() else {
            continue;
        };
        let values: Vec<&str> = field["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        fields.insert(name.to_owned(), json!(values.join(", ")));
    }
    let mut record = change.as_object().cloned().unwrap_or_default();
    for (key, value) in answer.as_object().into_iter().flatten() {
        if key != "field_data" {
            record.insert(key.clone(), value.clone());
        }
    }
    record.insert("fields".into(), Value::Object(fields));
    Ok(Value::Object(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_columns_are_keyed_by_id_and_test_leads_are_acknowledged() {
        let body = json!({
            "lead_id": "TeSter-123-ABCDEFGHIJKLMNOPQRSTUVWXYZ-abcdefghijklmnopqrstuvwxyz-0123456789-AaBbCcDdEeFf",
            "user_column_data": [
                {"column_name": "Full Name", "string_value": "Lin Wei", "column_id": "FULL_NAME"},
                {"column_name": "User Phone", "string_value": "+8613800138000", "column_id": "PHONE_NUMBER"},
                {"column_name": "Budget?", "string_value": "50k"}
            ],
            "api_version": "1.0", "form_id": 40000000000_i64, "campaign_id": 12345678901_i64,
            "google_key": "k", "is_test": false, "gcl_id": "abc"
        });
        let Ok(Delivery::Leads(records)) = google(&body) else {
            panic!("a lead");
        };
        assert_eq!(records[0].body["columns"]["FULL_NAME"], "Lin Wei");
        assert_eq!(records[0].body["columns"]["Budget?"], "50k");
        assert!(records[0].body.get("google_key").is_none());
        let mut test = body.clone();
        test["is_test"] = json!(true);
        assert_eq!(google(&test).ok(), Some(Delivery::Ignored("test_lead")));
        assert!(google(&json!([])).is_err());
    }

    #[test]
    fn meta_notifications_name_their_leads() {
        let body = json!({"object": "page", "entry": [{"id": "1", "time": 1, "changes": [
            {"field": "leadgen", "value": {"leadgen_id": "444", "form_id": "9", "page_id": "1"}},
            {"field": "feed", "value": {}},
            {"field": "leadgen", "value": {"leadgen_id": 445}}
        ]}]});
        let leads = meta_leads(&body).expect("leads");
        assert_eq!(
            leads.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["444", "445"]
        );
        assert!(meta_leads(&json!({"object": "user"})).is_err());
        assert_eq!(meta_signature("s", b"{}").len(), 7 + 64);
    }
}
