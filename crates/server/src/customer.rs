//! Recognising a customer again (查重 / 撞单): the keys a lead is known by — phone in E.164,
//! email case-folded, WeChat id, the company's name without its legal form, place prefixes and
//! punctuation, optionally with the contact's name — and the workspace's duplicate policy: which
//! keys count and what a match does.

use chrono::Duration;
use engine::follow_up::parse_duration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::leads::LeadInput;
use crate::normalize;

/// The name the policy is stored under in `workspace_settings`.
pub const POLICY_SETTING: &str = "duplicates";

/// A kind of key a customer is recognised by.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Phone,
    Email,
    Wechat,
    Company,
    /// The company together with the contact's name.
    CompanyName,
}

impl KeyKind {
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Phone,
        KeyKind::Email,
        KeyKind::Wechat,
        KeyKind::Company,
        KeyKind::CompanyName,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Phone => "phone",
            KeyKind::Email => "email",
            KeyKind::Wechat => "wechat",
            KeyKind::Company => "company",
            KeyKind::CompanyName => "company_name",
        }
    }

    pub fn parse(text: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// The key's name for people.
    pub fn label(self, zh: bool) -> &'static str {
        match (self, zh) {
            (KeyKind::Phone, true) => "手机号",
            (KeyKind::Phone, false) => "phone",
            (KeyKind::Email, true) => "邮箱",
            (KeyKind::Email, false) => "email",
            (KeyKind::Wechat, true) => "微信号",
            (KeyKind::Wechat, false) => "WeChat id",
            (KeyKind::Company, true) => "公司名称",
            (KeyKind::Company, false) => "company",
            (KeyKind::CompanyName, true) => "公司 + 联系人",
            (KeyKind::CompanyName, false) => "company and contact",
        }
    }
}

/// Every key a normalised lead document is recognised by, each kind at most once. All kinds
/// are recorded whatever the policy, so a policy changed later finds the history.
pub fn keys(input: &LeadInput) -> Vec<(KeyKind, String)> {
    let mut keys = Vec::with_capacity(4);
    if let Some(phone) = &input.phone {
        keys.push((KeyKind::Phone, phone.clone()));
    }
    if let Some(email) = &input.email {
        keys.push((KeyKind::Email, email.trim().to_lowercase()));
    }
    if let Some(wechat) = input.wechat.as_deref().map(str::trim)
        && !wechat.is_empty()
    {
        keys.push((KeyKind::Wechat, wechat.to_lowercase()));
    }
    if let Some(company) = input.company.as_deref().and_then(company) {
        if let Some(name) = input
            .name
            .as_deref()
            .map(person)
            .filter(|name| !name.is_empty())
        {
            keys.push((KeyKind::CompanyName, format!("{company}/{name}")));
        }
        keys.push((KeyKind::Company, company));
    }
    keys
}

/// A contact's name as a key: lower case, without spaces and punctuation.
fn person(name: &str) -> String {
    half_width(name)
        .chars()
        .filter(|character| character.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Full-width letters, digits and punctuation (`ＡＢＣ１２３（）`) as their ASCII forms.
fn half_width(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '\u{FF01}'..='\u{FF5E}' => {
                char::from_u32(character as u32 - 0xFEE0).unwrap_or(character)
            }
            '\u{3000}' => ' ',
            other => other,
        })
        .collect()
}

/// Legal forms at the end of a Chinese company name, longest first.
const CHINESE_FORMS: &[&str] = &[
    "集团股份有限公司",
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "股份公司",
    "集团公司",
    "分公司",
    "公司",
    "集团",
];

/// Legal forms as the last words of a company name in Latin script.
const LATIN_FORMS: &[&str] = &[
    "co",
    "company",
    "corp",
    "corporation",
    "inc",
    "incorporated",
    "llc",
    "ltd",
    "limited",
    "gmbh",
    "plc",
    "sa",
    "ag",
    "bv",
    "pte",
    "group",
];

/// A company name as a key: `深圳市腾讯计算机系统有限公司` and `腾讯计算机系统（深圳）有限公司`
/// are both `腾讯计算机系统`; `ACME, Inc.` is `acme`. `None` when nothing is left.
pub fn company(raw: &str) -> Option<String> {
    let text = half_width(raw).to_lowercase();
    // What stands in brackets is a place or a gloss: `（深圳）`, `(China)`.
    let mut unbracketed = String::with_capacity(text.len());
    let mut depth = 0usize;
    for character in text.chars() {
        match character {
            '(' | '[' | '【' | '〔' => depth += 1,
            ')' | ']' | '】' | '〕' => depth = depth.saturating_sub(1),
            _ if depth == 0 => unbracketed.push(character),
            _ => {}
        }
    }
    // Latin legal forms are words: drop them from the end before the spaces go.
    let mut words: Vec<&str> = unbracketed
        .split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    while words.len() > 1 && words.last().is_some_and(|word| LATIN_FORMS.contains(word)) {
        words.pop();
    }
    let mut name: String = words.concat();
    let mut changed = true;
    while changed {
        changed = false;
        for form in CHINESE_FORMS {
            if let Some(rest) = name.strip_suffix(form)
                && rest.chars().count() >= 2
            {
                name = rest.to_owned();
                changed = true;
                break;
            }
        }
    }
    name = strip_places(&name);
    (!name.is_empty()).then_some(name)
}

/// `广东省深圳市腾讯` → `腾讯`: a leading province (with or without 省 / 市 / 自治区) and a
/// leading city ending in 市, as long as two characters remain.
fn strip_places(name: &str) -> String {
    let keep = |rest: &str| rest.chars().count() >= 2;
    let mut rest = name;
    if let Some(province) = normalize::provinces().find(|province| rest.starts_with(province)) {
        let after = &rest[province.len()..];
        let after = [
            "壮族自治区",
            "回族自治区",
            "维吾尔自治区",
            "自治区",
            "省",
            "市",
        ]
        .iter()
        .find_map(|suffix| after.strip_prefix(suffix))
        .unwrap_or(after);
        if keep(after) {
            rest = after;
        }
    }
    // A city: two to four Han characters and 市.
    let prefix: Vec<char> = rest
        .chars()
        .take_while(|character| is_han(*character))
        .take(5)
        .collect();
    if let Some(position) = prefix
        .iter()
        .position(|character| *character == '市')
        .filter(|position| (2..=4).contains(position))
    {
        let cut: usize = prefix[..=position]
            .iter()
            .map(|character| character.len_utf8())
            .sum();
        let after = &rest[cut..];
        if keep(after) {
            rest = after;
        }
    }
    rest.to_owned()
}

fn is_han(character: char) -> bool {
    matches!(character, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// What a new arrival whose customer is already a lead does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMatch {
    /// Becomes a touch (客户再次咨询) on the existing open lead; no new lead.
    #[default]
    Attach,
    /// A new lead, routed to the existing lead's owner when they can take it.
    RouteToOwner,
    /// A new lead, routed as usual and flagged as a possible duplicate for review.
    Flag,
}

/// The workspace's duplicate policy as the API reads and writes it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicatePolicyDocument {
    /// Which keys recognise a customer: `phone`, `email`, `wechat`, `company` (or
    /// `company_name`: the company together with the contact's name). Empty: no duplicate
    /// checking.
    #[serde(default)]
    pub keys: Vec<KeyKind>,
    #[serde(default)]
    pub on_match: OnMatch,
    /// A customer whose lead was closed within this (`90d`) goes back to that lead's owner
    /// under every policy. Default 90 days; `0d`: never.
    #[serde(default)]
    pub window: Option<String>,
    /// With `attach`: the owner's first-response clock starts again, as for a new lead.
    #[serde(default)]
    pub restart_sla: bool,
    /// 撞单: refuse assigning or claiming a lead whose customer another rep holds (an open lead
    /// of theirs, within its protection period if it has one); a manager may override with a
    /// reason. Default on.
    #[serde(default = "yes")]
    pub protect_holders: bool,
}

fn yes() -> bool {
    true
}

/// The policy as routing applies it.
#[derive(Clone, Debug, PartialEq)]
pub struct DuplicatePolicy {
    pub keys: Vec<KeyKind>,
    pub on_match: OnMatch,
    pub window: Duration,
    pub restart_sla: bool,
    pub protect_holders: bool,
}

impl Default for DuplicatePolicy {
    fn default() -> Self {
        DuplicatePolicy {
            keys: Vec::new(),
            on_match: OnMatch::Attach,
            window: Duration::days(90),
            restart_sla: false,
            protect_holders: true,
        }
    }
}

impl DuplicatePolicy {
    /// Whether any key is checked.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }
}

impl DuplicatePolicyDocument {
    pub fn to_policy(&self) -> Result<DuplicatePolicy, ApiError> {
        let window = match &self.window {
            None => Duration::days(90),
            Some(text) => parse_duration(text)
                .map_err(|message| ApiError::invalid("invalid_value", "window", message))?,
        };
        let mut keys = self.keys.clone();
        keys.sort();
        keys.dedup();
        Ok(DuplicatePolicy {
            keys,
            on_match: self.on_match,
            window,
            restart_sla: self.restart_sla,
            protect_holders: self.protect_holders,
        })
    }
}

/// The stored policy, or the default (off) when none is stored or it no longer reads.
pub fn policy_from(document: Option<&str>) -> DuplicatePolicy {
    document
        .and_then(|text| serde_json::from_str::<DuplicatePolicyDocument>(text).ok())
        .and_then(|document| document.to_policy().ok())
        .unwrap_or_default()
}

/// The marker of how far leads stored before customer keys existed have been indexed.
const INDEXED: &str = "customer_keys_indexed";

/// Records the keys of leads stored before this version (customer keys are written with every
/// new lead since), resumably, a thousand at a time; how many leads it read. Safe to run on
/// several instances at once: a key already recorded is left alone.
pub async fn index_stored_leads(store: &store::Store) -> anyhow::Result<u64> {
    let marker = store.workspace_setting(INDEXED).await?;
    let progress: serde_json::Value = marker
        .as_ref()
        .and_then(|row| serde_json::from_str(&row.document).ok())
        .unwrap_or_default();
    if progress["done"] == true {
        return Ok(0);
    }
    let mut after = progress["after"].as_str().unwrap_or("").to_owned();
    let mut read = 0;
    loop {
        let leads = store.leads_after(&after, 1000).await?;
        let Some(last) = leads.last() else { break };
        after = last.id.clone();
        read += leads.len() as u64;
        let rows: Vec<store::CustomerKeyRow> = leads
            .iter()
            .flat_map(|lead| {
                let document: LeadInput = serde_json::from_str(&lead.document).unwrap_or_default();
                keys(&document)
                    .into_iter()
                    .map(|(kind, value)| store::CustomerKeyRow {
                        kind: kind.as_str().to_owned(),
                        value,
                        lead_id: lead.id.clone(),
                        created_at: lead.created_at,
                    })
            })
            .collect();
        store.insert_customer_keys(&rows).await?;
        store
            .put_workspace_setting(&marker_row(serde_json::json!({"after": after})))
            .await?;
    }
    store
        .put_workspace_setting(&marker_row(serde_json::json!({"done": true})))
        .await?;
    Ok(read)
}

fn marker_row(document: serde_json::Value) -> store::WorkspaceSettingRow {
    store::WorkspaceSettingRow {
        name: INDEXED.into(),
        document: document.to_string(),
        version: 0,
        updated_by: None,
        updated_at: chrono::Utc::now().timestamp_micros(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn company_names_lose_legal_forms_places_and_punctuation() {
        for (raw, expected) in [
            ("深圳市腾讯计算机系统有限公司", "腾讯计算机系统"),
            ("腾讯计算机系统（深圳）有限公司", "腾讯计算机系统"),
            ("广东省深圳市腾讯计算机系统有限公司", "腾讯计算机系统"),
            ("北京字节跳动科技有限公司", "字节跳动科技"),
            ("上海市 华东 制造 股份有限公司", "华东制造"),
            ("阿里巴巴（中国）网络技术有限公司", "阿里巴巴网络技术"),
            ("华为技术有限公司", "华为技术"),
            ("华为技术有限公司。", "华为技术"),
            ("ＡＢＣ科技有限公司", "abc科技"),
            ("新疆维吾尔自治区天山纺织集团有限公司", "天山纺织"),
            ("ACME, Inc.", "acme"),
            ("Acme Inc", "acme"),
            ("ACME Co., Ltd.", "acme"),
            ("Zinc", "zinc"),
            ("Siemens AG (China)", "siemens"),
            // Too little would be left without the place: it stays.
            ("北京公司", "北京"),
            ("上海", "上海"),
        ] {
            assert_eq!(company(raw).as_deref(), Some(expected), "{raw}");
        }
        assert_eq!(company("（）"), None);
        assert_eq!(company(" ,. "), None);
    }

    #[test]
    fn keys_fold_case_and_pair_company_with_name() {
        let input = LeadInput {
            name: Some("王 总".into()),
            phone: Some("+8613800138000".into()),
            email: Some("Wang@Example.com".into()),
            wechat: Some(" WangZong88 ".into()),
            company: Some("华东制造有限公司".into()),
            ..LeadInput::default()
        };
        let keys = keys(&input);
        assert_eq!(
            keys,
            vec![
                (KeyKind::Phone, "+8613800138000".to_owned()),
                (KeyKind::Email, "wang@example.com".to_owned()),
                (KeyKind::Wechat, "wangzong88".to_owned()),
                (KeyKind::CompanyName, "华东制造/王总".to_owned()),
                (KeyKind::Company, "华东制造".to_owned()),
            ]
        );
    }

    #[test]
    fn the_policy_reads_with_defaults_and_refuses_bad_windows() {
        let policy = policy_from(Some(r#"{"keys": ["phone", "email", "phone"]}"#));
        assert_eq!(policy.keys, vec![KeyKind::Phone, KeyKind::Email]);
        assert_eq!(policy.on_match, OnMatch::Attach);
        assert!(policy.protect_holders);
        assert_eq!(policy.window, Duration::days(90));
        assert!(!policy_from(None).enabled());
        let bad = DuplicatePolicyDocument {
            window: Some("soon".into()),
            ..Default::default()
        };
        assert_eq!(
            bad.to_policy().expect_err("a bad window").field.as_deref(),
            Some("window")
        );
    }
}
