//! Application messages to one person — 企业微信 应用消息, 钉钉 工作通知, 飞书 messages from an
//! app bot — so a rep hears of their lead alone instead of through a group chat that carries
//! every lead. Each platform hands out an access token for the application's credentials; the
//! token is kept until shortly before it expires and fetched again when the platform says it is
//! no longer valid. The same cache serves the CRM connectors' tokens (`crm.rs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::channel::{ChannelDocument, Outgoing, Recipient, SendError};

/// A token is fetched again this long before its stated expiry.
const MARGIN: Duration = Duration::from_secs(300);

/// Access tokens per application, across channels that share one.
#[derive(Debug, Default)]
pub struct Tokens {
    cache: Mutex<HashMap<String, (Value, Instant)>>,
    /// Held while a token is fetched, so deliveries sent at once fetch it once (platforms cap
    /// how often a token may be asked for).
    fetching: tokio::sync::Mutex<()>,
}

impl Tokens {
    fn key(channel: &ChannelDocument) -> String {
        // The secret is part of the key, hashed: a changed secret never reuses the old token.
        let secret = channel.secret.as_deref().unwrap_or_default();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes());
        format!(
            "{}|{}|{}|{}",
            channel.kind,
            channel.url.as_deref().unwrap_or_default(),
            channel.app_id.as_deref().unwrap_or_default(),
            hex::encode(&digest[..8])
        )
    }

    /// The cached token answer for the channel's application, if still fresh.
    pub fn cached(&self, channel: &ChannelDocument) -> Option<Value> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache
            .get(&Self::key(channel))
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(token, _)| token.clone())
    }

    /// Waits for any fetch under way; the caller then looks in the cache again before fetching.
    pub async fn fetching(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.fetching.lock().await
    }

    /// Keeps a token answer for `lifetime` (less the margin).
    pub fn keep(&self, channel: &ChannelDocument, token: Value, lifetime: Duration) {
        let fresh_for = lifetime.saturating_sub(MARGIN.min(lifetime / 2));
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.insert(Self::key(channel), (token, Instant::now() + fresh_for));
    }

    /// Drops the channel's token: the platform said it is not valid any more.
    pub fn forget(&self, channel: &ChannelDocument) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache.remove(&Self::key(channel));
    }
}

pub(super) fn failed(message: impl Into<String>) -> SendError {
    SendError {
        message: message.into(),
        rate_limited: false,
        refused: false,
        answer: None,
    }
}

/// The platform refused the application's credentials: an admin must change them.
pub(super) fn refused(message: impl Into<String>) -> SendError {
    SendError {
        refused: true,
        ..failed(message)
    }
}

/// The platform's API address: the channel's, or the public one.
pub(super) fn base(channel: &ChannelDocument, public: &str) -> String {
    channel
        .url
        .as_deref()
        .unwrap_or(public)
        .trim_end_matches('/')
        .to_owned()
}

pub(super) async fn json_of(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(u16, Value), SendError> {
    let response = request
        .send()
        .await
        .map_err(|error| failed(format!("{what}: {}", super::channel::describe(&error))))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The application's access token: from the cache, or fetched as the platform documents.
async fn token(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
) -> Result<String, SendError> {
    if let Some(token) = tokens.cached(channel) {
        return Ok(token.as_str().unwrap_or_default().to_owned());
    }
    let _fetching = tokens.fetching().await;
    if let Some(token) = tokens.cached(channel) {
        return Ok(token.as_str().unwrap_or_default().to_owned());
    }
    let app_id = channel.app_id.as_deref().unwrap_or_default();
    let secret = channel.secret.as_deref().unwrap_or_default();
    let (status, answer, field, lifetime) = match channel.kind.as_str() {
        // GET /cgi-bin/gettoken?corpid&corpsecret → {errcode, access_token, expires_in}
        "wecom_app" => {
            let url = format!(
                "{}/cgi-bin/gettoken",
                base(channel, "https://qyapi.weixin.qq.com")
            );
            let request = client
                .get(url)
                .query(&[("corpid", app_id), ("corpsecret", secret)]);
            let (status, answer) = json_of(request, "wecom gettoken").await?;
            (status, answer, "access_token", "expires_in")
        }
        // GET /gettoken?appkey&appsecret → {errcode, access_token, expires_in}
        "dingtalk_work" => {
            let url = format!("{}/gettoken", base(channel, "https://oapi.dingtalk.com"));
            let request = client
                .get(url)
                .query(&[("appkey", app_id), ("appsecret", secret)]);
            let (status, answer) = json_of(request, "dingtalk gettoken").await?;
            (status, answer, "access_token", "expires_in")
        }
        // POST /open-apis/auth/v3/tenant_access_token/internal → {code, tenant_access_token, expire}
        _ => {
            let url = format!(
                "{}/open-apis/auth/v3/tenant_access_token/internal",
                base(channel, "https://open.feishu.cn")
            );
            let request = client
                .post(url)
                .json(&json!({"app_id": app_id, "app_secret": secret}));
            let (status, answer) = json_of(request, "feishu tenant_access_token").await?;
            (status, answer, "tenant_access_token", "expire")
        }
    };
    let code = answer
        .get("errcode")
        .or_else(|| answer.get("code"))
        .and_then(Value::as_i64);
    let Some(token) = answer
        .get(field)
        .and_then(Value::as_str)
        .filter(|_| code.unwrap_or(0) == 0 && status < 400)
    else {
        return Err(refused(format!(
            "{} refused the application's credentials (HTTP {status}, code {})",
            channel.kind,
            code.unwrap_or_default()
        )));
    };
    let seconds = answer.get(lifetime).and_then(Value::as_u64).unwrap_or(7200);
    tokens.keep(channel, json!(token), Duration::from_secs(seconds));
    Ok(token.to_owned())
}

/// Codes meaning the token is no longer valid: fetch another and send again once.
fn stale_token(kind: &str, code: i64) -> bool {
    match kind {
        // 40014 invalid access_token, 42001 access_token expired (WeCom and DingTalk alike).
        "wecom_app" | "dingtalk_work" => matches!(code, 40014 | 42001),
        // 99991663 invalid tenant access token, 99991661 missing, 99991668 expired.
        _ => matches!(code, 99991661 | 99991663 | 99991668),
    }
}

/// Codes meaning too many messages: wait a minute.
fn too_many(kind: &str, code: i64) -> bool {
    match kind {
        // 45009 API frequency, 45033 concurrency.
        "wecom_app" => matches!(code, 45009 | 45033),
        // 90018 / 90002: too many calls.
        "dingtalk_work" => matches!(code, 90002 | 90018),
        // 99991400: request frequency limit.
        _ => code == 99991400,
    }
}

/// The recipients' ids on the channel's platform.
fn ids(channel: &ChannelDocument, recipients: &[Recipient]) -> Vec<(String, bool)> {
    recipients
        .iter()
        .filter_map(|recipient| {
            let contact = &recipient.contact;
            let id = match channel.kind.as_str() {
                "wecom_app" => contact.wecom_userid.clone(),
                "dingtalk_work" => contact.dingtalk_userid.clone(),
                _ => contact.feishu_user_id.clone(),
            }?;
            let english = contact
                .locale
                .as_deref()
                .map_or(channel.english(), |locale| locale == "en");
            Some((id, english))
        })
        .collect()
}

/// Sends the event to each recipient through the application, in the recipient's language.
pub async fn send(
    client: &reqwest::Client,
    tokens: &Tokens,
    channel: &ChannelDocument,
    outgoing: &Outgoing<'_>,
) -> Result<(), SendError> {
    let targets = ids(channel, outgoing.recipients);
    if targets.is_empty() {
        return Err(failed(format!(
            "no recipient has a {} user id",
            channel.kind
        )));
    }
    // One message per language; Feishu takes one receiver per message.
    let mut batches: Vec<(bool, Vec<String>)> = Vec::new();
    for (id, english) in targets {
        match batches
            .iter_mut()
            .find(|(language, _)| *language == english && channel.kind != "feishu_app")
        {
            Some((_, ids)) => ids.push(id),
            None => batches.push((english, vec![id])),
        }
    }
    for (english, ids) in batches {
        let message = if english { outgoing.en } else { outgoing.zh };
        let mut retried = false;
        loop {
            let token = token(client, tokens, channel).await?;
            let (status, answer) = match channel.kind.as_str() {
                "wecom_app" => {
                    let url = format!(
                        "{}/cgi-bin/message/send",
                        base(channel, "https://qyapi.weixin.qq.com")
                    );
                    let agent: i64 = channel
                        .agent_id
                        .as_deref()
                        .and_then(|id| id.parse().ok())
                        .unwrap_or_default();
                    let body = json!({
                        "touser": ids.join("|"),
                        "msgtype": "markdown",
                        "agentid": agent,
                        "markdown": {"content": super::channel::truncate(&message.markdown(), 2048)},
                        "enable_duplicate_check": 1,
                        "duplicate_check_interval": 1800,
                    });
                    let request = client
                        .post(url)
                        .query(&[("access_token", &token)])
                        .json(&body);
                    json_of(request, "wecom message/send").await?
                }
                "dingtalk_work" => {
                    let url = format!(
                        "{}/topapi/message/corpconversation/asyncsend_v2",
                        base(channel, "https://oapi.dingtalk.com")
                    );
                    let body = json!({
                        "agent_id": channel.agent_id.as_deref().and_then(|id| id.parse::<i64>().ok()).unwrap_or_default(),
                        "userid_list": ids.join(","),
                        "msg": {"msgtype": "markdown", "markdown": {
                            "title": message.title,
                            "text": super::channel::truncate(&message.markdown(), 5000),
                        }},
                    });
                    let request = client
                        .post(url)
                        .query(&[("access_token", &token)])
                        .json(&body);
                    json_of(request, "dingtalk asyncsend_v2").await?
                }
                _ => {
                    let url = format!(
                        "{}/open-apis/im/v1/messages",
                        base(channel, "https://open.feishu.cn")
                    );
                    // The message's content is itself a JSON string.
                    let content = json!({"text": super::channel::truncate(&message.plain(), 4000)})
                        .to_string();
                    let body = json!({"receive_id": ids[0], "msg_type": "text", "content": content,
                                      "uuid": format!("{}-{}", outgoing.delivery_id, ids[0]).chars().take(50).collect::<String>()});
                    let request = client
                        .post(url)
                        .query(&[(
                            "receive_id_type",
                            channel.id_type.as_deref().unwrap_or("user_id"),
                        )])
                        .bearer_auth(&token)
                        .json(&body);
                    json_of(request, "feishu im/v1/messages").await?
                }
            };
            let code = answer
                .get("errcode")
                .or_else(|| answer.get("code"))
                .and_then(Value::as_i64);
            match code {
                Some(0) if status < 400 => break,
                Some(code) if stale_token(&channel.kind, code) && !retried => {
                    tokens.forget(channel);
                    retried = true;
                }
                code => {
                    let code = code.unwrap_or_default();
                    return Err(SendError {
                        rate_limited: status == 429 || too_many(&channel.kind, code),
                        ..failed(format!(
                            "{} answered HTTP {status}, error {code}: {}",
                            channel.kind,
                            super::channel::error_text(&answer)
                        ))
                    });
                }
            }
        }
    }
    Ok(())
}
