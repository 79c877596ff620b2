//! Notification channels: where events go (a webhook, a WeCom / DingTalk / Feishu group robot,
//! Slack), how each platform wants its message shaped and signed, and its published rate limits.

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The events a channel may subscribe to.
pub const EVENTS: [&str; 14] = [
    "lead.assigned",
    "lead.inquired",
    "lead.reassigned",
    "lead.reclaimed",
    "lead.sla_reminder",
    "lead.sla_escalated",
    "lead.claimed",
    "lead.returned_to_pool",
    "lead.won",
    "lead.lost",
    "lead.follow_up_due",
    "lead.recycle_warning",
    "channel.test",
    "channel.needs_attention",
];

/// The kinds a team digest can go to: group chats, webhooks and email.
pub const DIGEST_KINDS: [&str; 6] = ["webhook", "wecom", "dingtalk", "feishu", "slack", "email"];

/// The kinds of channel: group robots and webhooks, email and SMS, each platform's application
/// messages to one person (`wecom_app`, `dingtalk_work`, `feishu_app`), and the CRM connectors
/// (`crate::notify::crm`).
pub const KINDS: [&str; 15] = [
    "webhook",
    "wecom",
    "dingtalk",
    "feishu",
    "slack",
    "email",
    "aliyun_sms",
    "tencent_sms",
    "wecom_app",
    "dingtalk_work",
    "feishu_app",
    "salesforce",
    "hubspot",
    "fxiaoke",
    "jiandaoyun",
];

/// Application messages to one person, through the platform's access token.
pub const APP_KINDS: [&str; 3] = ["wecom_app", "dingtalk_work", "feishu_app"];

/// A channel as the API reads and writes it. The secret is write-only: views never show it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDocument {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// One of `KINDS`.
    pub kind: String,
    /// The endpoint: your webhook, or the robot's webhook address with its key or token. For
    /// application messages and CRM connectors, the platform's API address (its public one when
    /// left out). Not for `email`.
    #[serde(default)]
    pub url: Option<String>,
    /// `wecom_app`: the corp id; `dingtalk_work`: the AppKey; `feishu_app`: the App ID;
    /// `salesforce`: the connected app's consumer key; `fxiaoke`: the appId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// `wecom_app` and `dingtalk_work`: the application's AgentId.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// `feishu_app`: which id the reps' `feishu_user_id` is, `user_id` (default) or `open_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
    /// A second credential: 纷享销客's permanent code. Never returned after it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// For CRM connectors: where and how leads are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm: Option<super::crm::CrmDocument>,
    /// For `email`: the SMTP server to send through.
    #[serde(default)]
    pub smtp: Option<SmtpDocument>,
    /// For `aliyun_sms` and `tencent_sms`: the account and template.
    #[serde(default)]
    pub sms: Option<super::sms::SmsDocument>,
    /// Signing secret: HMAC key for `webhook`, the robot's signing secret for `dingtalk` and
    /// `feishu`; the SMTP password for `email`; the application's secret for `wecom_app`,
    /// `dingtalk_work`, `feishu_app`, `salesforce` (consumer secret) and `fxiaoke` (appSecret);
    /// the private-app token for `hubspot` and the API key for `jiandaoyun`. Never returned
    /// after it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Events to send; every lead event when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Only events of leads in these teams; every team when empty.
    #[serde(default)]
    pub teams: Vec<String>,
    /// `zh` (default) or `en`.
    #[serde(default)]
    pub language: Option<String>,
    /// Attempts before a delivery is dead-lettered; default 8.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// For `webhook`: sends per minute at most.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A scheduled summary of each of the channel's teams (every team when `teams` is empty):
    /// leaderboard, first response, overdue leads by rep (公开透明).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestDocument>,
    /// Why the stored secret could not be opened (sealed under another key, or no key set):
    /// sends fail with this rather than sign with nothing. Never stored.
    #[serde(skip)]
    pub unreadable: Option<String>,
}

/// When a channel gets its team digest, in the workspace's time zone (the default calendar's).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestDocument {
    /// `day` (the day so far) or `week` (the last seven days).
    pub every: String,
    /// `HH:MM`, e.g. `18:00`.
    pub at: String,
    /// For `week`: `mon` … `sun`; Monday when left out.
    #[serde(default)]
    pub weekday: Option<String>,
}

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl DigestDocument {
    fn check(&self) -> Result<(), ApiError> {
        if !["day", "week"].contains(&self.every.as_str()) {
            return Err(invalid("digest.every", "every is day or week"));
        }
        self.time()?;
        if let Some(day) = &self.weekday
            && !WEEKDAYS.contains(&day.as_str())
        {
            return Err(invalid("digest.weekday", "weekday is mon, tue, … or sun"));
        }
        Ok(())
    }

    /// The time of day it goes out.
    pub fn time(&self) -> Result<chrono::NaiveTime, ApiError> {
        chrono::NaiveTime::parse_from_str(self.at.trim(), "%H:%M")
            .map_err(|_| invalid("digest.at", "a time of day such as 18:00"))
    }

    /// The day of the week a weekly digest goes out.
    pub fn weekday(&self) -> chrono::Weekday {
        let index = self
            .weekday
            .as_deref()
            .and_then(|day| WEEKDAYS.iter().position(|name| *name == day))
            .unwrap_or(0);
        chrono::Weekday::try_from(index as u8).unwrap_or(chrono::Weekday::Mon)
    }
}

/// An SMTP server. The password is the channel's `secret`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpDocument {
    pub host: String,
    /// 587 for `starttls`, 465 for `tls`, 25 for `none` when left out.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls`, or `none` (only for a relay on a trusted network).
    #[serde(default)]
    pub security: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// The sender address: `Leadroute <leads@example.com>` or an address.
    pub from: String,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_value", field, message)
}

impl ChannelDocument {
    pub fn check(&self, team_ids: &[String]) -> Result<(), ApiError> {
        if self.name.trim().is_empty() {
            return Err(invalid("name", "a channel needs a name"));
        }
        if !KINDS.contains(&self.kind.as_str()) {
            return Err(invalid(
                "kind",
                "kind is webhook, wecom, dingtalk, feishu, slack, email, aliyun_sms or tencent_sms",
            ));
        }
        if self.kind.ends_with("_sms") {
            let sms = self.sms.as_ref().ok_or_else(|| {
                ApiError::invalid(
                    "missing_field",
                    "sms",
                    "an SMS channel needs its account and template",
                )
            })?;
            for (field, value) in [
                ("sms.access_key_id", &sms.access_key_id),
                ("sms.sign_name", &sms.sign_name),
                ("sms.template", &sms.template),
            ] {
                if value.trim().is_empty() {
                    return Err(ApiError::invalid("missing_field", field, "required"));
                }
            }
            if self.kind == "tencent_sms" && sms.app_id.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "missing_field",
                    "sms.app_id",
                    "Tencent Cloud needs the SmsSdkAppId",
                ));
            }
            if self.secret.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "missing_field",
                    "secret",
                    "the access key secret",
                ));
            }
        } else if self.kind == "email" {
            let smtp = self.smtp.as_ref().ok_or_else(|| {
                ApiError::invalid(
                    "missing_field",
                    "smtp",
                    "an email channel needs an SMTP server",
                )
            })?;
            if smtp.host.trim().is_empty() {
                return Err(invalid("smtp.host", "the SMTP server's host name"));
            }
            if !matches!(
                smtp.security.as_deref(),
                None | Some("starttls" | "tls" | "none")
            ) {
                return Err(invalid(
                    "smtp.security",
                    "security is starttls, tls or none",
                ));
            }
            smtp.from.parse::<lettre::message::Mailbox>().map_err(|_| {
                invalid("smtp.from", "expected an address such as leads@example.com")
            })?;
        } else if APP_KINDS.contains(&self.kind.as_str()) || super::crm::is_crm(&self.kind) {
            self.check_api()?;
        } else {
            let text = self.url.as_deref().ok_or_else(|| {
                ApiError::invalid("missing_field", "url", "the channel needs its address")
            })?;
            let url = reqwest::Url::parse(text)
                .map_err(|_| invalid("url", "expected an http or https address"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid("url", "expected an http or https address"));
            }
        }
        for (index, event) in self.events.iter().enumerate() {
            if !EVENTS.contains(&event.as_str()) {
                return Err(invalid(
                    &format!("events[{index}]"),
                    format!("unknown event {event:?}"),
                ));
            }
        }
        for (index, team) in self.teams.iter().enumerate() {
            if !team_ids.contains(team) {
                return Err(ApiError::invalid(
                    "unknown_team",
                    format!("teams[{index}]"),
                    format!("no team has id {team:?}"),
                ));
            }
        }
        if let Some(language) = &self.language
            && !["zh", "en"].contains(&language.as_str())
        {
            return Err(invalid("language", "language is zh or en"));
        }
        if let Some(digest) = &self.digest {
            if !DIGEST_KINDS.contains(&self.kind.as_str()) {
                return Err(invalid(
                    "digest",
                    "a digest goes to a group chat, a webhook or email",
                ));
            }
            digest.check()?;
        }
        if self
            .max_attempts
            .is_some_and(|attempts| !(1..=50).contains(&attempts))
        {
            return Err(invalid("max_attempts", "between 1 and 50"));
        }
        if self.kind == "webhook" && self.secret.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid(
                "missing_field",
                "secret",
                "a webhook needs a secret to sign its requests with",
            ));
        }
        Ok(())
    }

    /// The credentials an application channel or CRM connector needs, and its address.
    fn check_api(&self) -> Result<(), ApiError> {
        let required = |field: &str, value: &Option<String>, what: &str| {
            if value.as_deref().is_none_or(|value| value.trim().is_empty()) {
                return Err(ApiError::invalid("missing_field", field, what.to_owned()));
            }
            Ok(())
        };
        match self.kind.as_str() {
            "wecom_app" => {
                required("app_id", &self.app_id, "the corp id (企业ID)")?;
                required("agent_id", &self.agent_id, "the application's AgentId")?;
            }
            "dingtalk_work" => {
                required("app_id", &self.app_id, "the application's AppKey")?;
                required("agent_id", &self.agent_id, "the application's AgentId")?;
            }
            "feishu_app" => {
                required("app_id", &self.app_id, "the App ID")?;
                if !matches!(self.id_type.as_deref(), None | Some("user_id" | "open_id")) {
                    return Err(invalid("id_type", "id_type is user_id or open_id"));
                }
            }
            "salesforce" => required("app_id", &self.app_id, "the connected app's consumer key")?,
            "fxiaoke" => {
                required("app_id", &self.app_id, "the appId")?;
                required("token", &self.token, "the permanent code (永久授权码)")?;
            }
            _ => {}
        }
        required("secret", &self.secret, "the application's secret or token")?;
        if super::crm::is_crm(&self.kind) {
            super::crm::check(self)?;
        }
        if let Some(text) = &self.url {
            let url = reqwest::Url::parse(text)
                .map_err(|_| invalid("url", "expected an http or https address"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid("url", "expected an http or https address"));
            }
        }
        Ok(())
    }

    pub fn enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// Whether an event of a lead in `team` goes to this channel.
    pub fn wants(&self, event: &str, team: Option<&str>) -> bool {
        let event_ok = if self.events.is_empty() {
            if super::crm::is_crm(&self.kind) {
                super::crm::EVENTS.contains(&event)
            } else {
                event.starts_with("lead.")
            }
        } else {
            self.events.iter().any(|wanted| wanted == event)
        };
        let team_ok = self.teams.is_empty()
            || team.is_some_and(|team| self.teams.iter().any(|wanted| wanted == team));
        self.enabled() && event_ok && team_ok
    }

    pub fn english(&self) -> bool {
        self.language.as_deref() == Some("en")
    }

    pub fn max_attempts(&self) -> i64 {
        i64::from(self.max_attempts.unwrap_or(8))
    }

    /// The platform's published limits: `(window in seconds, sends per window)`.
    pub fn rate_limits(&self) -> Vec<(i64, i64)> {
        match self.kind.as_str() {
            // Group robots: 20 messages a minute.
            "wecom" | "dingtalk" => vec![(60, 20)],
            // Custom bots: 100 a minute and 5 a second.
            "feishu" => vec![(1, 5), (60, 100)],
            // Incoming webhooks: about one a second.
            "slack" => vec![(1, 1)],
            // Per account; the clouds also cap messages per number per hour and day.
            "aliyun_sms" | "tencent_sms" => vec![(1, 10)],
            // Application messages: WeCom takes 30 a minute for one member; Feishu 50 a second
            // and 1,000 a minute per app; DingTalk's work notices are capped per user per day.
            "wecom_app" => vec![(60, 30)],
            "feishu_app" => vec![(1, 50), (60, 1000)],
            "dingtalk_work" => vec![(1, 20)],
            kind if super::crm::is_crm(kind) => super::crm::rate_limits(kind),
            _ => self
                .per_minute
                .map(|limit| vec![(60, i64::from(limit))])
                .unwrap_or_default(),
        }
    }
}

/// A message for people, in one language.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub title: String,
    pub lines: Vec<String>,
    pub link: Option<String>,
}

impl Message {
    pub(super) fn markdown(&self) -> String {
        let mut text = format!("**{}**\n", self.title);
        for line in &self.lines {
            text.push_str(&format!("> {line}\n"));
        }
        if let Some(link) = &self.link {
            text.push_str(&format!("\n[{link}]({link})"));
        }
        text
    }

    pub(super) fn plain(&self) -> String {
        let mut text = self.title.clone();
        for line in &self.lines {
            text.push('\n');
            text.push_str(line);
        }
        if let Some(link) = &self.link {
            text.push('\n');
            text.push_str(link);
        }
        text
    }
}

/// Cuts text to at most `max` bytes on a character boundary.
pub(super) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| {
        HmacSha256::new_from_slice(b"").unwrap_or_else(|_| unreachable!("hmac takes any key"))
    });
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The generic webhook's signature header value: `v1=` and the hex HMAC-SHA256 of
/// `timestamp + "." + body` keyed with the secret.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!(
        "v1={}",
        hex::encode(hmac(
            secret.as_bytes(),
            format!("{timestamp}.{body}").as_bytes()
        ))
    )
}

/// DingTalk's robot signature: base64 of HMAC-SHA256 of `timestamp + "\n" + secret` keyed with
/// the secret (timestamp in milliseconds); URL-encoded in the query.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let digest = hmac(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Feishu's bot signature: base64 of HMAC-SHA256 keyed with `timestamp + "\n" + secret` over
/// an empty message (timestamp in seconds); sent in the body.
pub fn feishu_sign(secret: &str, timestamp: i64) -> String {
    let digest = hmac(format!("{timestamp}\n{secret}").as_bytes(), b"");
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Why a send failed, whether the platform asked to wait, and whether it refused the
/// channel's credentials (then an admin must change them; deliveries wait meanwhile).
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    pub rate_limited: bool,
    pub refused: bool,
    /// What the platform answered, for the delivery log.
    pub answer: Option<String>,
}

use super::apps::failed;

/// Someone an event is for, and how to reach them.
#[derive(Clone, Debug, Default)]
pub struct Recipient {
    pub id: String,
    pub name: String,
    pub contact: crate::workspace::ContactDocument,
}

/// What one delivery sends.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub zh: &'a Message,
    pub en: &'a Message,
    /// The event's data for machines (the webhook's `data`).
    pub data: &'a Value,
    /// Unix seconds.
    pub now: i64,
    /// Who the event is for: mentioned in group robots, mailed by email channels.
    pub recipients: &'a [Recipient],
    /// The lead, whole, for CRM connectors (never for messages: they show a summary).
    pub lead: Option<&'a store::LeadRow>,
    /// The lead's owner, for the CRM's user id.
    pub owner: Option<&'a Recipient>,
}

/// The recipients' ids on a platform, where known.
fn ids(
    recipients: &[Recipient],
    pick: impl Fn(&crate::workspace::ContactDocument) -> Option<&String>,
) -> Vec<String> {
    recipients
        .iter()
        .filter_map(|recipient| pick(&recipient.contact).cloned())
        .collect()
}

/// Sends one message to the channel as its platform documents it; a CRM's answer comes back.
pub async fn send(
    client: &reqwest::Client,
    tokens: &super::apps::Tokens,
    channel: &ChannelDocument,
    outgoing: &Outgoing<'_>,
) -> Result<Option<String>, SendError> {
    if let Some(reason) = &channel.unreadable {
        return Err(failed(reason.clone()));
    }
    if super::crm::is_crm(&channel.kind) {
        return super::crm::send(client, tokens, channel, outgoing)
            .await
            .map(Some);
    }
    if APP_KINDS.contains(&channel.kind.as_str()) {
        return super::apps::send(client, tokens, channel, outgoing)
            .await
            .map(|()| None);
    }
    send_message(client, channel, outgoing).await.map(|()| None)
}

/// Group robots, webhooks, email and SMS.
async fn send_message(
    client: &reqwest::Client,
    channel: &ChannelDocument,
    outgoing: &Outgoing<'_>,
) -> Result<(), SendError> {
    if channel.kind == "email" {
        return email(channel, outgoing).await;
    }
    if let (true, Some(sms)) = (channel.kind.ends_with("_sms"), &channel.sms) {
        let phones: Vec<String> = outgoing
            .recipients
            .iter()
            .filter_map(|recipient| {
                crate::normalize::phone(recipient.contact.mobile.as_deref()?).ok()
            })
            .collect();
        let message = if channel.english() {
            outgoing.en
        } else {
            outgoing.zh
        };
        return super::sms::send(
            client,
            &channel.kind,
            sms,
            channel.secret.as_deref().unwrap_or_default(),
            &phones,
            message,
            outgoing.now,
        )
        .await;
    }
    let secret = channel.secret.as_deref().unwrap_or_default();
    let message = if channel.english() {
        outgoing.en
    } else {
        outgoing.zh
    };
    let address = channel.url.clone().unwrap_or_default();
    let recipients = outgoing.recipients;
    let (url, body) = match channel.kind.as_str() {
        "webhook" => {
            let body = json!({
                "id": outgoing.delivery_id,
                "event": outgoing.event,
                "created_at": chrono::DateTime::from_timestamp(outgoing.now, 0).map(|at| at.to_rfc3339()),
                "data": outgoing.data,
                "recipients": recipients.iter().map(|recipient| &recipient.id).collect::<Vec<_>>(),
                "text": message.plain(),
            })
            .to_string();
            let response = client
                .post(&address)
                .header("content-type", "application/json")
                .header("x-leadroute-delivery", outgoing.delivery_id)
                .header("x-leadroute-event", outgoing.event)
                .header("x-leadroute-timestamp", outgoing.now.to_string())
                .header(
                    "x-leadroute-signature",
                    webhook_signature(secret, outgoing.now, &body),
                )
                .body(body)
                .send()
                .await
                .map_err(|error| failed(describe(&error)))?;
            return check_status(response).await.map(drop);
        }
        "wecom" => {
            let mut content = message.markdown();
            for id in ids(recipients, |contact| contact.wecom_userid.as_ref()) {
                content.push_str(&format!(" <@{id}>"));
            }
            (
                address,
                json!({"msgtype": "markdown", "markdown": {"content": truncate(&content, 4096)}}),
            )
        }
        "dingtalk" => {
            let mut url = address;
            if !secret.is_empty() {
                let timestamp = outgoing.now * 1000;
                let sign = dingtalk_sign(secret, timestamp);
                let encoded: String =
                    url::form_urlencoded::byte_serialize(sign.as_bytes()).collect();
                let separator = if url.contains('?') { '&' } else { '?' };
                url.push_str(&format!("{separator}timestamp={timestamp}&sign={encoded}"));
            }
            let at = ids(recipients, |contact| contact.dingtalk_userid.as_ref());
            let mut text = message.markdown();
            for id in &at {
                text.push_str(&format!(" @{id}"));
            }
            (
                url,
                json!({"msgtype": "markdown", "markdown": {"title": message.title, "text": truncate(&text, 5000)},
                       "at": {"atUserIds": at, "isAtAll": false}}),
            )
        }
        "feishu" => {
            let mut text = message.plain();
            for recipient in recipients {
                if let Some(id) = &recipient.contact.feishu_user_id {
                    text.push_str(&format!(" <at user_id=\"{id}\">{}</at>", recipient.name));
                }
            }
            let mut body = json!({"msg_type": "text", "content": {"text": truncate(&text, 4000)}});
            if !secret.is_empty() {
                body["timestamp"] = json!(outgoing.now.to_string());
                body["sign"] = json!(feishu_sign(secret, outgoing.now));
            }
            (address, body)
        }
        _ => {
            let mut text = message.markdown().replace("**", "*");
            for id in ids(recipients, |contact| contact.slack_member_id.as_ref()) {
                text.push_str(&format!(" <@{id}>"));
            }
            (address, json!({"text": truncate(&text, 3000)}))
        }
    };
    let response = client
        .post(url)
        .json(&body)
        .send()
        .await
        .map_err(|error| failed(describe(&error)))?;
    let text = check_status(response).await?;
    if channel.kind == "slack" {
        return Ok(());
    }
    // The robots answer 200 with an error code in the body.
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = answer
        .get("errcode")
        .or_else(|| answer.get("code"))
        .or_else(|| answer.get("StatusCode"))
        .and_then(Value::as_i64);
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(SendError {
            refused: false,
            answer: None,
            message: format!(
                "{} answered error {code}: {}",
                channel.kind,
                error_text(&answer)
            ),
            // WeCom 45009, DingTalk 130101, Feishu 11232: too many messages.
            rate_limited: matches!(code, 45009 | 130101 | 11232 | 9499),
        }),
        None => Err(failed(format!("{} answered without a code", channel.kind))),
    }
}

/// The message of a Chinese platform's error answer (`errmsg` or `msg`).
pub(super) fn error_text(answer: &Value) -> &str {
    answer
        .get("errmsg")
        .or_else(|| answer.get("msg"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Message {
    fn html(&self) -> String {
        let mut html = format!("<h3>{}</h3>", escape_html(&self.title));
        for line in &self.lines {
            html.push_str(&format!("<p>{}</p>", escape_html(line)));
        }
        if let Some(link) = &self.link {
            let link = escape_html(link);
            html.push_str(&format!("<p><a href=\"{link}\">{link}</a></p>"));
        }
        html
    }
}

/// Mails the recipients who have an address, each in their language, plain text and HTML.
async fn email(channel: &ChannelDocument, outgoing: &Outgoing<'_>) -> Result<(), SendError> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

    let smtp = channel
        .smtp
        .as_ref()
        .ok_or_else(|| failed("no SMTP server configured"))?;
    let security = smtp.security.as_deref().unwrap_or("starttls");
    let builder = match security {
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|_| failed("bad SMTP host"))?
            .port(smtp.port.unwrap_or(465)),
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port.unwrap_or(25)),
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|_| failed("bad SMTP host"))?
            .port(smtp.port.unwrap_or(587)),
    };
    let builder = builder.timeout(Some(std::time::Duration::from_secs(10)));
    let builder = match (&smtp.username, &channel.secret) {
        (Some(username), Some(password)) => {
            builder.credentials(Credentials::new(username.clone(), password.clone()))
        }
        _ => builder,
    };
    let transport = builder.build();
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|_| failed("bad sender address"))?;
    let mut sent = 0;
    for english in [false, true] {
        let to: Vec<Mailbox> = outgoing
            .recipients
            .iter()
            .filter(|recipient| {
                let locale = recipient
                    .contact
                    .locale
                    .as_deref()
                    .unwrap_or(if channel.english() { "en" } else { "zh" });
                (locale == "en") == english
            })
            .filter_map(|recipient| {
                let address = recipient.contact.email.as_ref()?.parse().ok()?;
                Some(Mailbox::new(Some(recipient.name.clone()), address))
            })
            .collect();
        if to.is_empty() {
            continue;
        }
        let message = if english { outgoing.en } else { outgoing.zh };
        let mut builder = lettre::Message::builder()
            .from(from.clone())
            .subject(message.title.clone())
            .message_id(Some(format!(
                "<{}.{}@leadroute>",
                outgoing.delivery_id,
                u8::from(english)
            )));
        for mailbox in to {
            builder = builder.to(mailbox);
        }
        let mail = builder
            .multipart(MultiPart::alternative_plain_html(
                message.plain(),
                message.html(),
            ))
            .map_err(|_| failed("could not build the message"))?;
        transport.send(mail).await.map_err(|error| {
            failed(if error.is_permanent() {
                "the SMTP server refused the message"
            } else {
                "SMTP failed"
            })
        })?;
        sent += 1;
    }
    if sent == 0 {
        return Err(failed("no recipient has an email address"));
    }
    Ok(())
}

/// The error of a request, without the URL (robot URLs carry their key).
pub(super) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

async fn check_status(response: reqwest::Response) -> Result<String, SendError> {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    Err(SendError {
        message: format!("HTTP {}", status.as_u16()),
        rate_limited: status.as_u16() == 429,
        refused: false,
        answer: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_documented_recipes() {
        // Recomputed by hand from the recipes: base64(hmac_sha256(key, message)).
        let dingtalk = dingtalk_sign("SEC123", 1_700_000_000_000);
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac(b"SEC123", b"1700000000000\nSEC123"));
        assert_eq!(dingtalk, expected);
        let feishu = feishu_sign("abc", 1_700_000_000);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(hmac(b"1700000000\nabc", b""));
        assert_eq!(feishu, expected);
        assert!(webhook_signature("s", 1, "{}").starts_with("v1="));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let text = "线索".repeat(2000);
        let cut = truncate(&text, 4096);
        assert!(cut.len() <= 4096);
        assert!(cut.ends_with("..."));
    }
}
