//! Intake sources: form tools and ad platforms posting leads without code. A source maps fields
//! of the incoming JSON (by path) or form post (by name) to lead fields, translates values
//! ("北京市" → 华北), and is authenticated either by a public token (plain web forms) or by a
//! signature over the delivery (webhooks in the style of 简道云). Platform retries carry the same
//! delivery id; it becomes the lead's external id, so a retry is a duplicate, never a new lead.
//! A source may start from a platform's preset (`presets`), which fills in all of this.

pub mod presets;

use std::collections::BTreeMap;

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::error::ApiError;

/// How a source proves a delivery is its own.
pub const AUTH_KINDS: [&str; 5] = ["token", "jdy", "hmac_sha256", "meta", "google_key"];

/// Deliveries signed longer ago than this are refused as stale (replays).
pub const MAX_AGE_SECS: i64 = 300;

/// An intake source as the API reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeSourceDocument {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// A platform's preset: `web_form`, `jiandaoyun`, `meta_lead_ads` or `google_ads`. It sets
    /// `auth` and the mapping; a mapping given too overrides it field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// `token`: a public token in the URL (`?token=`), for plain web forms; `jdy`: 简道云-style
    /// signature (`X-JDY-Signature` = sha1 of `nonce:body:secret:timestamp`, `nonce` and
    /// `timestamp` in the query, delivery id in `X-JDY-DeliverId`); `hmac_sha256`:
    /// `X-Signature` = hex HMAC-SHA256 of `timestamp + "." + body` keyed with the secret,
    /// `X-Timestamp`, delivery id in `X-Delivery-Id`; `meta`: `X-Hub-Signature-256` keyed
    /// with the app secret; `google_key`: the form's key in the body. Set by a preset.
    #[serde(default)]
    pub auth: String,
    /// The public token for `token`; generated when left out. Shown: it is in the form's URL.
    #[serde(default)]
    pub token: Option<String>,
    /// The signing secret for `jdy` and `hmac_sha256`, Meta's app secret, Google's key. Never
    /// returned after it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Meta: the verify token typed into the app's webhook settings, answered in the
    /// subscription handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_token: Option<String>,
    /// Meta: the page access token the leads are read with. Never returned after it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Meta: the Graph API's address with its version; `https://graph.facebook.com/v21.0` when
    /// left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<String>,
    /// Lead field → where its value is: a JSON path such as `$.data.phone` or `data.items[0].name`
    /// in a JSON body, a field name in a form post; `a|b` takes the first present.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Value maps per lead field, applied after the mapping: `{"region": {"北京市": "华北"}}`.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Fixed lead fields, such as `{"source": "简道云"}`; mapped values win.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub defaults: Map<String, Value>,
    /// For form posts: where to send the browser after a successful post (303).
    #[serde(default)]
    pub redirect_to: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_value", field, message)
}

impl IntakeSourceDocument {
    /// The source's preset, if it names a known one.
    pub fn preset(&self) -> Option<presets::Preset> {
        presets::Preset::parse(self.preset.as_deref()?)
    }

    /// Fills what the preset gives (auth, mapping, the lead's source) where the document is
    /// silent; a token for a token source.
    pub fn prepare(&mut self) {
        if let Some(preset) = self.preset() {
            if self.auth.is_empty() {
                preset.auth().clone_into(&mut self.auth);
            }
            for (field, path) in preset.mapping() {
                self.mapping.entry(field).or_insert(path);
            }
            self.defaults
                .entry("source")
                .or_insert_with(|| Value::String(preset.label().to_owned()));
        }
        if self.auth == "token" && self.token.as_deref().is_none_or(str::is_empty) {
            self.token = Some(crate::auth::random_hex(16));
        }
    }

    pub fn check(&self) -> Result<(), ApiError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "a source needs a name"));
        }
        let preset = match self.preset.as_deref() {
            Some(name) => Some(presets::Preset::parse(name).ok_or_else(|| {
                invalid(
                    "preset",
                    format!("preset is one of {}", presets::NAMES.join(", ")),
                )
            })?),
            None => None,
        };
        if let Some(preset) = preset
            && self.auth != preset.auth()
        {
            return Err(invalid(
                "auth",
                format!(
                    "the {} preset authenticates by {}",
                    preset.label(),
                    preset.auth()
                ),
            ));
        }
        if !AUTH_KINDS.contains(&self.auth.as_str()) {
            return Err(invalid(
                "auth",
                "auth is token, jdy, hmac_sha256, meta or google_key",
            ));
        }
        if self.auth == "meta" {
            for (field, value, what) in [
                (
                    "verify_token",
                    &self.verify_token,
                    "the verify token typed into Meta's webhook settings",
                ),
                (
                    "access_token",
                    &self.access_token,
                    "the page access token leads are read with",
                ),
            ] {
                if value.as_deref().is_none_or(|value| value.trim().is_empty()) {
                    return Err(ApiError::invalid("missing_field", field, what));
                }
            }
            if let Some(url) = &self.graph_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                return Err(invalid("graph_url", "expected an http or https address"));
            }
        }
        if self.auth != "token" && self.secret.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                "missing_field",
                "secret",
                "a signed source needs its secret",
            ));
        }
        if self.mapping.is_empty() {
            return Err(invalid("mapping", "map at least one lead field"));
        }
        for (field, path) in &self.mapping {
            if !crate::leads::INPUT_FIELDS.contains(&field.as_str())
                && !field.starts_with("attributes.")
            {
                return Err(invalid(
                    &format!("mapping.{field}"),
                    format!("{field:?} is not a lead field"),
                ));
            }
            if path.trim().is_empty() || path.split('|').any(|path| parse_path(path).is_none()) {
                return Err(invalid(
                    &format!("mapping.{field}"),
                    "expected a path such as $.data.phone or a form field name",
                ));
            }
        }
        for field in self.values.keys() {
            if !self.mapping.contains_key(field) {
                return Err(invalid(
                    &format!("values.{field}"),
                    "value maps apply to mapped fields",
                ));
            }
        }
        if let Some(url) = &self.redirect_to
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid("redirect_to", "expected an http or https address"));
        }
        Ok(())
    }
}

/// One step of a path: a key or an index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Reads `$.a.b[0].c`, `a.b[0].c` or a plain name.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path.strip_prefix("$.").unwrap_or(path);
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(at) => (&part[..at], &part[at..]),
            None => (part, ""),
        };
        if key.contains(']') {
            return None;
        }
        if !key.is_empty() {
            steps.push(Step::Key(key.to_owned()));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            steps.push(Step::Index(inner[..end].parse().ok()?));
            rest = &inner[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// The value at a path; with alternatives (`a|b`), the first present and not null.
fn at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('|').find_map(|path| {
        let mut current = value;
        for step in parse_path(path)? {
            current = match step {
                Step::Key(key) => current.get(&key)?,
                Step::Index(index) => current.get(index)?,
            };
        }
        (!current.is_null()).then_some(current)
    })
}

/// Builds the lead document from an incoming body: JSON by path, or form fields by name.
pub fn map_lead(
    source: &IntakeSourceDocument,
    body: &Value,
) -> Result<Map<String, Value>, ApiError> {
    let mut lead = source.defaults.clone();
    let mut attributes = lead
        .remove("attributes")
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default();
    for (field, path) in &source.mapping {
        let Some(value) = at(body, path).filter(|value| !value.is_null()) else {
            continue;
        };
        let mut value = value.clone();
        if let (Some(map), Some(text)) = (source.values.get(field), value.as_str())
            && let Some(mapped) = map.get(text)
        {
            value = Value::String(mapped.clone());
        }
        // Forms send text: numbers for numeric fields are read from it.
        if matches!(field.as_str(), "company_size" | "budget" | "score")
            && let Some(number) = value
                .as_str()
                .and_then(|text| text.trim().parse::<f64>().ok())
        {
            value = serde_json::json!(number);
        }
        // Platforms send ids as numbers (Google's `campaign_id`); text fields take them as text.
        if value.is_number()
            && !field.starts_with("attributes.")
            && !matches!(field.as_str(), "company_size" | "budget" | "score")
        {
            value = Value::String(value.to_string());
        }
        if field == "tags"
            && let Some(text) = value.as_str()
        {
            value = Value::Array(
                text.split([',', '，'])
                    .map(str::trim)
                    .filter(|tag| !tag.is_empty())
                    .map(|tag| Value::String(tag.to_owned()))
                    .collect(),
            );
        }
        match field.strip_prefix("attributes.") {
            Some(name) => {
                attributes.insert(name.to_owned(), value);
            }
            None => {
                lead.insert(field.clone(), value);
            }
        }
    }
    if !attributes.is_empty() {
        lead.insert("attributes".into(), Value::Object(attributes));
    }
    if lead.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "unmapped",
            "none of the mapped fields are in the delivery",
        ));
    }
    Ok(lead)
}

/// A form post as a flat JSON object (repeated names keep the last value).
pub fn form_body(bytes: &[u8]) -> Value {
    let mut object = Map::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        object.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    Value::Object(object)
}

/// 简道云's push signature: hex sha1 of `nonce:body:secret:timestamp`.
pub fn jdy_signature(nonce: &str, body: &str, secret: &str, timestamp: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(format!("{nonce}:{body}:{secret}:{timestamp}").as_bytes());
    hex::encode(hasher.finalize())
}

/// The `hmac_sha256` style: hex HMAC-SHA256 of `timestamp + "." + body`.
pub fn hmac_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let body = json!({"data": {"items": [{"name": "王总"}], "phone": "13800138000"}});
        assert_eq!(at(&body, "$.data.phone"), Some(&json!("13800138000")));
        assert_eq!(at(&body, "data.items[0].name"), Some(&json!("王总")));
        assert_eq!(at(&body, "$.data.items[3].name"), None);
        assert!(parse_path("a[x]").is_none());
        assert!(parse_path("a]").is_none());
    }

    #[test]
    fn mapping_translates_values_and_reads_numbers_from_forms() {
        let source = IntakeSourceDocument {
            name: "Form".into(),
            auth: "token".into(),
            mapping: BTreeMap::from([
                ("name".into(), "姓名".into()),
                ("region".into(), "城市".into()),
                ("budget".into(), "预算".into()),
                ("attributes.channel".into(), "渠道".into()),
            ]),
            values: BTreeMap::from([(
                "region".into(),
                BTreeMap::from([("北京市".into(), "华北".into())]),
            )]),
            defaults: json!({"source": "官网表单"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..IntakeSourceDocument::default()
        };
        let body = form_body("姓名=%E7%8E%8B%E6%80%BB&城市=北京市&预算=200000&渠道=seo".as_bytes());
        let lead = map_lead(&source, &body).expect("lead");
        assert_eq!(
            Value::Object(lead),
            json!({"name": "王总", "region": "华北", "budget": 200000.0, "source": "官网表单",
                   "attributes": {"channel": "seo"}})
        );
    }

    #[test]
    fn signatures_compare_whole() {
        let signature = jdy_signature("n", "{}", "s", "1");
        assert_eq!(signature.len(), 40);
        assert!(crate::auth::same(
            &signature,
            &jdy_signature("n", "{}", "s", "1")
        ));
        assert!(!crate::auth::same(
            &signature,
            &jdy_signature("n", "{}", "s", "2")
        ));
        assert_eq!(hmac_signature("s", "1", "{}").len(), 64);
    }
}
