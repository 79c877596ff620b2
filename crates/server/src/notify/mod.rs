//! Notification delivery: events in the outbox are fanned out to the channels that want them
//! (one delivery each), then sent at least once — exponential backoff between attempts, a dead
//! letter after the channel's maximum, each platform's rate limits kept in the database so they
//! hold across instances, and a delivery id receivers de-duplicate on. `run(now)` does one
//! round; the service calls it every second.

pub mod apps;
pub mod channel;
pub mod crm;
pub mod digest;
pub mod sms;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use store::{DeliveryRow, LeadRow, OutboxRow, Setting, Store};

use crate::error::ApiError;
use channel::{ChannelDocument, Message, Outgoing, Recipient};

/// Deliveries one round sends at most.
const ROUND: i64 = 50;
/// How long one send may take by default.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry waits this long, each next one twice as long, up to `BACKOFF_MAX_SECS`.
const BACKOFF_FIRST_SECS: i64 = 10;
const BACKOFF_MAX_SECS: i64 = 3600;
/// A channel needing attention tries its waiting deliveries again this often, in case the
/// platform let the credentials in again without a change here.
const ATTENTION_RETRY_SECS: i64 = 3600;

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        // Robot URLs carry keys: never follow them elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|error| {
            tracing::error!(%error, "building the HTTP client failed; using the defaults");
            reqwest::Client::new()
        })
}

/// The wait before attempt `attempts + 1`, after `attempts` failed.
pub fn backoff(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    (BACKOFF_FIRST_SECS.saturating_mul(1_i64 << exponent)).min(BACKOFF_MAX_SECS)
}

/// Sends what the outbox holds.
#[derive(Clone, Debug)]
pub struct Notifier {
    store: Store,
    client: reqwest::Client,
    /// The console's address, for links in messages.
    public_url: String,
    /// How long one send may take; a sender holds the deliveries it took three times as long,
    /// so a sender that died lets go of them soon after.
    timeout: Duration,
    /// Opens the channels' sealed secrets.
    sealer: std::sync::Arc<crate::secrets::Sealer>,
    /// Access tokens of application channels and CRM connectors.
    tokens: std::sync::Arc<apps::Tokens>,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub dispatched: usize,
    pub sent: usize,
    pub failed: usize,
    pub deferred: usize,
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

impl Notifier {
    pub fn new(
        store: Store,
        public_url: String,
        sealer: std::sync::Arc<crate::secrets::Sealer>,
    ) -> Notifier {
        Notifier {
            store,
            client: client(TIMEOUT),
            public_url: public_url.trim_end_matches('/').to_owned(),
            timeout: TIMEOUT,
            sealer,
            tokens: std::sync::Arc::default(),
        }
    }

    pub fn with_sealer(mut self, sealer: std::sync::Arc<crate::secrets::Sealer>) -> Notifier {
        self.sealer = sealer;
        self
    }

    /// A stored channel ready to send: its secret opened, or why it cannot be (then every
    /// send fails with that reason, visible in the delivery log).
    pub fn readable(&self, mut channel: ChannelDocument) -> ChannelDocument {
        let mut unreadable = None;
        for secret in [&mut channel.secret, &mut channel.token] {
            if let Some(sealed) = secret.take() {
                match self.sealer.open(&sealed) {
                    Ok(plain) => *secret = Some(plain),
                    Err(reason) => unreadable = Some(reason),
                }
            }
        }
        channel.unreadable = unreadable;
        channel
    }

    /// The HTTP client sends go through (no redirects, the send timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// The console's address.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The same with another time limit per send.
    pub fn with_timeout(mut self, timeout: Duration) -> Notifier {
        self.client = client(timeout);
        self.timeout = timeout;
        self
    }

    fn lease_micros(&self) -> i64 {
        i64::try_from(self.timeout.as_micros().saturating_mul(3)).unwrap_or(i64::MAX)
    }

    /// Every channel with when it was created: a channel takes the events from then on.
    async fn channels(&self) -> Result<HashMap<String, (ChannelDocument, i64)>, ApiError> {
        Ok(self
            .store
            .list_settings(Setting::Channels)
            .await?
            .into_iter()
            .filter_map(|row| {
                let document = serde_json::from_str(&row.document).ok()?;
                Some((row.id, (self.readable(document), row.created_at)))
            })
            .collect())
    }

    /// One round: fan new events out, then send the deliveries due at `now`.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<Round, ApiError> {
        let dispatched = self.dispatch(now).await?;
        let mut round = self.deliver(now).await?;
        round.dispatched = dispatched;
        Ok(round)
    }

    /// Fans the outbox's new events out to the channels that want them; returns how many.
    pub async fn dispatch(&self, now: DateTime<Utc>) -> Result<usize, ApiError> {
        let channels = self.channels().await?;
        // With no channel there is nothing to fan out to: leave the outbox alone rather than
        // take the write lock every round (a channel made later starts from its creation).
        if channels.is_empty() {
            return Ok(0);
        }
        let mut dispatched = 0;
        loop {
            let taken = self
                .store
                .dispatch(500, |event| plan(&channels, event, now))
                .await?;
            dispatched += taken;
            if taken < 500 {
                return Ok(dispatched);
            }
        }
    }

    /// Sends the deliveries due at `now`, a round's worth at once.
    pub async fn deliver(&self, now: DateTime<Utc>) -> Result<Round, ApiError> {
        let channels = self.channels().await?;
        let mut round = Round::default();
        let due = self
            .store
            .claim_deliveries(micros(now), micros(now) + self.lease_micros(), ROUND)
            .await?;
        // Rules by name, for messages that say which rule routed a lead.
        let rules = if due.is_empty() {
            std::sync::Arc::default()
        } else {
            std::sync::Arc::new(crate::reports::active_rule_names(&self.store).await)
        };
        let mut tasks = tokio::task::JoinSet::new();
        for delivery in due {
            let notifier = self.clone();
            let channel = channels
                .get(&delivery.channel_id)
                .map(|(channel, _)| channel.clone());
            let rules = rules.clone();
            tasks.spawn(async move { notifier.attempt(delivery, channel, &rules, now).await });
        }
        while let Some(outcome) = tasks.join_next().await {
            match outcome {
                Ok(Ok(Attempt::Sent)) => round.sent += 1,
                Ok(Ok(Attempt::Failed)) => round.failed += 1,
                Ok(Ok(Attempt::Deferred)) => round.deferred += 1,
                Ok(Err(error)) => tracing::warn!(code = %error.code, "delivery bookkeeping failed"),
                Err(error) => tracing::error!(%error, "delivery task failed"),
            }
        }
        Ok(round)
    }

    async fn attempt(
        &self,
        mut delivery: DeliveryRow,
        channel: Option<ChannelDocument>,
        rules: &HashMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<Attempt, ApiError> {
        let Some(channel) = channel.filter(ChannelDocument::enabled) else {
            delivery.status = "dead".into();
            delivery.last_error = Some("the channel was deleted or disabled".into());
            self.store.finish_delivery(&delivery).await?;
            return Ok(Attempt::Failed);
        };
        // Each window of the platform's limits must have room, or the send waits for the next.
        for (window, limit) in channel.rate_limits() {
            let start = now.timestamp() / window * window;
            if !self
                .store
                .reserve_send(&delivery.channel_id, window, start, limit)
                .await?
            {
                delivery.next_attempt_at = (start + window) * 1_000_000;
                self.store.finish_delivery(&delivery).await?;
                return Ok(Attempt::Deferred);
            }
        }
        let event = self.store.get_event(&delivery.event_id).await?;
        let lead = match event.as_ref().and_then(|event| event.lead_id.clone()) {
            Some(id) => self.store.get_lead(&id).await?,
            None => None,
        };
        let reps = self.reps().await?;
        let names: HashMap<String, String> = reps
            .iter()
            .map(|(id, recipient)| (id.clone(), recipient.name.clone()))
            .collect();
        // Why the lead went to its owner (the decision's explanation) and when the next clock
        // runs out, for messages about assignments.
        let mut facts = Facts {
            event: event.as_ref(),
            lead: lead.as_ref(),
            names: &names,
            explanation: None,
            next_due: None,
            public_url: &self.public_url,
            rules,
        };
        if let (Some(lead), true) = (
            lead.as_ref(),
            matches!(
                delivery.event.as_str(),
                "lead.assigned" | "lead.reassigned" | "lead.reclaimed"
            ),
        ) {
            let decisions = self.store.decisions_for(&lead.id).await?;
            facts.explanation = decisions.first().and_then(|decision| {
                serde_json::from_str(&crate::leads::stored_explanation(decision)).ok()
            });
            facts.next_due = self
                .store
                .timers_for(&lead.id)
                .await?
                .first()
                .map(|timer| crate::leads::time(timer.due_at));
        }
        let zh = render(&facts, false);
        let en = render(&facts, true);
        let data = event_data(event.as_ref(), lead.as_ref());
        let recipients: Vec<Recipient> = event
            .as_ref()
            .and_then(|event| serde_json::from_str::<Vec<String>>(&event.recipients).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|id| reps.get(id).cloned())
            .collect();
        let owner = lead
            .as_ref()
            .and_then(|lead| reps.get(lead.owner_id.as_deref()?));
        let outgoing = Outgoing {
            delivery_id: &delivery.id,
            event: &delivery.event,
            zh: &zh,
            en: &en,
            data: &data,
            now: now.timestamp(),
            recipients: &recipients,
            lead: lead.as_ref(),
            owner,
        };
        delivery.attempts += 1;
        let result = channel::send(&self.client, &self.tokens, &channel, &outgoing).await;
        let attempt = match result {
            Ok(answer) => {
                delivery.status = "sent".into();
                delivery.sent_at = Some(micros(now));
                delivery.last_error = None;
                delivery.answer = answer;
                Attempt::Sent
            }
            Err(error) if error.refused => {
                // The credentials are refused: the delivery waits for an admin, without using
                // up its attempts, and the channel says it needs attention (once).
                delivery.attempts -= 1;
                delivery.last_error = Some(error.message.clone());
                delivery.next_attempt_at = micros(now) + ATTENTION_RETRY_SECS * 1_000_000;
                self.needs_attention(&delivery.channel_id, &error.message, now)
                    .await?;
                Attempt::Failed
            }
            Err(error) => {
                delivery.last_error = Some(error.message);
                delivery.answer = error.answer;
                if delivery.attempts >= channel.max_attempts() {
                    delivery.status = "dead".into();
                } else {
                    let wait = if error.rate_limited {
                        60
                    } else {
                        backoff(delivery.attempts)
                    };
                    delivery.next_attempt_at = micros(now) + wait * 1_000_000;
                }
                Attempt::Failed
            }
        };
        self.store.finish_delivery(&delivery).await?;
        Ok(attempt)
    }

    /// Marks the channel as needing attention and tells the other channels (event
    /// `channel.needs_attention`), unless it already is marked.
    async fn needs_attention(
        &self,
        channel_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let row = store::ChannelAttentionRow {
            channel_id: channel_id.to_owned(),
            reason: reason.chars().take(300).collect(),
            since: micros(now),
        };
        let event = OutboxRow {
            id: uuid::Uuid::now_v7().to_string(),
            event: "channel.needs_attention".into(),
            lead_id: None,
            rep_id: None,
            recipients: "[]".into(),
            payload: json!({"channel_id": channel_id, "reason": row.reason}).to_string(),
            created_at: micros(now),
            status: "pending".into(),
        };
        if self.store.set_channel_attention(&row, &event).await? {
            tracing::warn!(channel = %channel_id, "a channel's credentials were refused; its deliveries wait");
        }
        Ok(())
    }

    /// Every rep as a possible recipient: name and contact details.
    async fn reps(&self) -> Result<HashMap<String, Recipient>, ApiError> {
        Ok(self
            .store
            .list_reps()
            .await?
            .into_iter()
            .map(|row| {
                let contact = serde_json::from_str::<crate::workspace::RepDocument>(&row.document)
                    .ok()
                    .and_then(|document| document.contact)
                    .unwrap_or_default();
                (
                    row.id.clone(),
                    Recipient {
                        id: row.id,
                        name: row.name,
                        contact,
                    },
                )
            })
            .collect())
    }

    /// Sends a test message to a channel at once, outside the outbox; says what went wrong.
    /// For an email channel, `to` names the reps to mail.
    /// Says what the platform answered, when it says more than yes (a CRM connector's check).
    pub async fn test(
        &self,
        channel: &ChannelDocument,
        to: &[String],
    ) -> Result<Option<String>, String> {
        let message = |english: bool| Message {
            title: if english {
                "Leadroute test message".into()
            } else {
                "Leadroute 测试消息".into()
            },
            lines: vec![if english {
                "This channel is set up: lead notifications will arrive here.".into()
            } else {
                "通道已配置：线索通知将发送到这里。".into()
            }],
            link: Some(self.public_url.clone()),
        };
        let (zh, en) = (message(false), message(true));
        let reps = self.reps().await.map_err(|error| error.message)?;
        let recipients: Vec<Recipient> = to.iter().filter_map(|id| reps.get(id).cloned()).collect();
        let id = uuid::Uuid::now_v7().to_string();
        let data = json!({"test": true});
        let outgoing = Outgoing {
            delivery_id: &id,
            event: "channel.test",
            zh: &zh,
            en: &en,
            data: &data,
            now: Utc::now().timestamp(),
            recipients: &recipients,
            lead: None,
            owner: None,
        };
        if crm::is_crm(&channel.kind) {
            return crm::test(&self.client, &self.tokens, channel)
                .await
                .map(Some)
                .map_err(|error| error.message);
        }
        channel::send(&self.client, &self.tokens, channel, &outgoing)
            .await
            .map_err(|error| error.message)
    }
}

enum Attempt {
    Sent,
    Failed,
    Deferred,
}

/// The deliveries an event makes: one per channel that wants it.
fn plan(
    channels: &HashMap<String, (ChannelDocument, i64)>,
    event: &OutboxRow,
    now: DateTime<Utc>,
) -> Vec<DeliveryRow> {
    let payload = serde_json::from_str::<Value>(&event.payload).unwrap_or(Value::Null);
    let team = payload.get("team_id").and_then(Value::as_str);
    // An event made for one channel (its team digest) goes to that channel alone. (A
    // `channel_id` in a payload names what the event is about, as in
    // `channel.needs_attention`, not where it goes.)
    let only = payload.get("for_channel").and_then(Value::as_str);
    let mut ids: Vec<&String> = channels
        .iter()
        .filter(|(id, (channel, created_at))| match only {
            Some(only) => id.as_str() == only && channel.enabled(),
            None => event.created_at >= *created_at && channel.wants(&event.event, team),
        })
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids.into_iter()
        .map(|channel_id| DeliveryRow {
            id: uuid::Uuid::now_v7().to_string(),
            event_id: event.id.clone(),
            channel_id: channel_id.clone(),
            event: event.event.clone(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: micros(now),
            locked_until: None,
            last_error: None,
            created_at: micros(now),
            sent_at: None,
            answer: None,
        })
        .collect()
}

/// The event for machines: its payload with a summary of the lead (no phone, email or WeChat).
fn event_data(event: Option<&OutboxRow>, lead: Option<&LeadRow>) -> Value {
    let mut data = event
        .and_then(|event| serde_json::from_str::<Value>(&event.payload).ok())
        .unwrap_or_else(|| json!({}));
    if let (Some(lead), Some(object)) = (lead, data.as_object_mut()) {
        object.insert("lead".into(), summary(lead));
    }
    data
}

fn summary(lead: &LeadRow) -> Value {
    let document: Value = serde_json::from_str(&lead.document).unwrap_or(Value::Null);
    let field = |name: &str| document.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "id": lead.id,
        "name": field("name"),
        "company": field("company"),
        "region": field("region"),
        "industry": field("industry"),
        "source": lead.source,
        "priority": lead.priority,
        "status": lead.status,
    })
}

/// The message people read: what happened, to which lead, who it is for, by when.
/// What a message about one event can say.
struct Facts<'a> {
    event: Option<&'a OutboxRow>,
    lead: Option<&'a LeadRow>,
    names: &'a HashMap<String, String>,
    /// The latest decision's explanation, `{"en", "zh"}`.
    explanation: Option<Value>,
    /// When the lead's next clock runs out.
    next_due: Option<String>,
    public_url: &'a str,
    /// The active rules by name.
    rules: &'a HashMap<String, String>,
}

fn render(facts: &Facts<'_>, english: bool) -> Message {
    let Facts {
        event, lead, names, ..
    } = *facts;
    let kind = event.map_or("", |event| event.event.as_str());
    let payload = event
        .and_then(|event| serde_json::from_str::<Value>(&event.payload).ok())
        .unwrap_or(Value::Null);
    // A digest was written in both languages when it was made.
    if kind == "team.digest" {
        let written = &payload[if english { "en" } else { "zh" }];
        return Message {
            title: written["title"].as_str().unwrap_or_default().to_owned(),
            lines: written["lines"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|line| line.as_str().map(str::to_owned))
                .collect(),
            link: written["link"].as_str().map(str::to_owned),
        };
    }
    let text = |name: &str| payload.get(name).and_then(Value::as_str).map(str::to_owned);
    let name_of = |id: Option<String>| {
        id.map(|id| names.get(&id).cloned().unwrap_or(id))
            .unwrap_or_else(|| "-".into())
    };
    let owner = name_of(text("owner_id"));
    let (en, zh) = match kind {
        "lead.assigned" => ("New lead for", "新线索分配给"),
        "lead.reassigned" => ("Lead reassigned to", "线索转给"),
        "lead.inquired" => ("Customer asked again, owner", "客户再次咨询，负责人"),
        "lead.reclaimed" => ("Lead reclaimed, now with", "线索已收回，转给"),
        "lead.sla_reminder" => ("Please follow up:", "请尽快跟进："),
        "lead.sla_escalated" => ("Not followed up in time:", "超时未跟进："),
        "lead.claimed" => ("Lead claimed by", "线索被领取："),
        "lead.returned_to_pool" => ("Lead returned to the pool from", "线索退回公海，原负责人"),
        "lead.won" => ("Won by", "赢单："),
        "lead.lost" => ("Lost by", "输单："),
        "lead.follow_up_due" => ("Callback due:", "预约回访到期："),
        "lead.recycle_warning" => ("Lead will be recycled soon:", "线索即将被回收："),
        _ => ("Leadroute:", "Leadroute："),
    };
    let who = if kind == "lead.returned_to_pool" {
        name_of(text("previous_owner_id"))
    } else {
        owner
    };
    let title = if english {
        format!("{en} {who}")
    } else {
        format!("{zh}{who}")
    };
    let mut lines = Vec::new();
    if let Some(lead) = lead {
        let document: Value = serde_json::from_str(&lead.document).unwrap_or(Value::Null);
        let field = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let parts: Vec<String> = [
            field("name"),
            field("company"),
            field("region"),
            field("industry"),
            lead.source.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            lines.push(parts.join(" · "));
        }
        // A priority in words (紧急, not `urgent`); normal goes without saying.
        if let Some(priority) = lead.priority.as_deref().filter(|p| *p != "normal") {
            let t = crate::console::i18n::Tr {
                lang: if english {
                    crate::console::i18n::Lang::En
                } else {
                    crate::console::i18n::Lang::Zh
                },
            };
            lines.push(if english {
                format!("Priority: {}", t.state(priority))
            } else {
                format!("优先级：{}", t.state(priority))
            });
        }
    }
    if let Some(reason) = text("reason") {
        lines.push(if english {
            format!("Why: {reason}")
        } else {
            format!("原因：{reason}")
        });
    }
    if let Some(why) = facts
        .explanation
        .as_ref()
        .and_then(|explanation| explanation.get(if english { "en" } else { "zh" })?.as_str())
        .and_then(|text| text.lines().find(|line| !line.trim().is_empty()))
    {
        lines.push(why.trim().chars().take(200).collect());
    }
    if let Some(due) = text("due_at")
        .or_else(|| text("recycle_at"))
        .or_else(|| facts.next_due.clone())
    {
        lines.push(if english {
            format!("Due: {due}")
        } else {
            format!("截止：{due}")
        });
    }
    if let Some(rule) = text("rule_id") {
        let rule = facts.rules.get(&rule).cloned().unwrap_or(rule);
        lines.push(if english {
            format!("Routed by rule “{rule}”")
        } else {
            format!("分配规则：{rule}")
        });
    }
    Message {
        title,
        lines,
        link: lead.map(|lead| format!("{}/leads/{}", facts.public_url, lead.id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_the_rule_and_the_priority_in_words() {
        let event = OutboxRow {
            id: "e".into(),
            event: "lead.assigned".into(),
            lead_id: Some("l".into()),
            rep_id: Some("r".into()),
            recipients: "[]".into(),
            payload: json!({"owner_id": "r", "rule_id": "east"}).to_string(),
            created_at: 0,
            status: "pending".into(),
        };
        let lead = LeadRow {
            id: "l".into(),
            document: r#"{"name":"王总","company":"苏州精工"}"#.into(),
            priority: Some("urgent".into()),
            ..LeadRow::default()
        };
        let names = HashMap::from([("r".to_owned(), "王芳".to_owned())]);
        let rules = HashMap::from([("east".to_owned(), "华东线索".to_owned())]);
        let facts = Facts {
            event: Some(&event),
            lead: Some(&lead),
            names: &names,
            explanation: None,
            next_due: None,
            public_url: "http://127.0.0.1:8080",
            rules: &rules,
        };
        let zh = render(&facts, false).plain();
        assert!(zh.contains("新线索分配给王芳"), "{zh}");
        assert!(zh.contains("优先级：紧急"), "{zh}");
        assert!(zh.contains("分配规则：华东线索"), "{zh}");
        assert!(!zh.contains("urgent") && !zh.contains("east"), "{zh}");
        let en = render(&facts, true).plain();
        assert!(en.contains("Routed by rule “华东线索”"), "{en}");
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<i64> = (1..=10).map(backoff).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
    }
}
