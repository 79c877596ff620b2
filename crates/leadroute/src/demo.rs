//! The demo workspace: three teams and twenty reps with realistic names, regions, industries,
//! caps and hours, a published rule set, and a few hundred leads routed through the same path
//! as the API.

use anyhow::Context as _;
use engine::LeadStatus;
use serde_json::json;
use server::AppState;
use server::auth::{Role, new_key};
use server::leads::LeadInput;
use server::routing::{ActivityInput, Clock, FeedbackInput, LeadOp, LeadPatch, Router};
use store::{DocRow, RepRow, Setting, TeamRow};

const REPS: &[(&str, &str, &str, &[&str], u8)] = &[
    ("zhang-wei", "张伟", "华东", &["制造", "零售"], 4),
    ("wang-fang", "王芳", "华东", &["互联网", "教育"], 3),
    ("li-na", "李娜", "华东", &["金融", "制造"], 3),
    ("liu-yang", "刘洋", "华东", &["医疗", "教育"], 2),
    ("chen-jing", "陈静", "华东", &["制造", "互联网"], 2),
    ("yang-fan", "杨帆", "华东", &["零售", "金融"], 1),
    ("zhao-lei", "赵磊", "华东", &["制造"], 1),
    ("huang-ting", "黄婷", "华北", &["互联网", "金融"], 2),
    ("zhou-jie", "周杰", "华南", &["制造", "零售"], 4),
    ("wu-min", "吴敏", "华南", &["互联网", "教育"], 3),
    ("xu-qiang", "徐强", "华南", &["金融", "医疗"], 2),
    ("sun-li", "孙丽", "华南", &["制造", "医疗"], 2),
    ("ma-chao", "马超", "西南", &["零售", "互联网"], 1),
    ("zhu-lin", "朱琳", "华南", &["教育", "制造"], 1),
    ("hu-bin", "胡斌", "华东", &["制造", "金融", "医疗"], 5),
    ("guo-jing", "郭靖", "华北", &["互联网", "金融"], 5),
    ("he-xue", "何雪", "华南", &["制造", "零售"], 4),
    ("lin-feng", "林峰", "华东", &["医疗", "教育"], 4),
    ("gao-jie", "高洁", "华中", &["金融", "互联网"], 5),
    ("luo-yu", "罗宇", "西南", &["制造", "零售", "互联网"], 4),
];

const COMPANIES: &[&str] = &[
    "苏州精工机械",
    "杭州云帆科技",
    "上海汇金资本",
    "南京康宁医疗",
    "宁波海润贸易",
    "广州智联教育",
    "深圳星河电子",
    "东莞宏达制造",
    "厦门蓝海零售",
    "成都天府软件",
    "北京博远咨询",
    "武汉楚天物流",
    "合肥量子装备",
    "佛山美家家居",
    "无锡新材科技",
    "青岛海信达",
];
const PROVINCES: &[&str] = &[
    "上海市",
    "江苏省",
    "浙江省",
    "广东省",
    "福建省",
    "四川省",
    "北京市",
    "湖北省",
    "山东省",
];
const INDUSTRIES: &[&str] = &["制造", "互联网", "金融", "教育", "医疗", "零售"];
const SOURCES: &[&str] = &["巨量引擎", "百度", "官网表单", "展会", "转介绍", "腾讯广告"];
const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const GIVEN: &[&str] = &["总", "经理", "女士", "先生", "工"];

/// A small deterministic generator, so every demo looks the same.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % below as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }
}

/// What the demo prints: a new admin key, and the console sign-in made with the workspace.
pub struct Access {
    pub key: String,
    /// `(username, password)` when this run created the users.
    pub admin: Option<(String, String)>,
}

/// Seeds an empty workspace (with an admin user and a rep user), or gives an existing demo's users
/// fresh passwords, then returns a new admin key in place of the last run's.
pub async fn prepare(state: &AppState) -> anyhow::Result<Access> {
    let store = &state.store;
    let mut admin = None;
    if store.list_reps().await?.is_empty() {
        seed(state).await.context("creating the demo workspace")?;
        let password = server::auth::random_hex(8);
        server::api::accounts::create_first_user(
            store,
            "admin",
            Role::Admin,
            None,
            password.clone(),
        )
        .await
        .map_err(|error| anyhow::anyhow!(error.message))?;
        server::api::accounts::create_first_user(
            store,
            "wang-fang",
            Role::Rep,
            Some("wang-fang".into()),
            password.clone(),
        )
        .await
        .map_err(|error| anyhow::anyhow!(error.message))?;
        admin = Some(("admin".to_owned(), password));
    } else {
        // Run again on its workspace: nothing is seeded twice; the demo's users get a fresh
        // password (their sessions end), printed like the first time.
        let password = server::auth::random_hex(8);
        for username in ["admin", "wang-fang"] {
            if let Some(user) = store.user_by_name(username).await? {
                server::api::accounts::set_password(
                    store,
                    &crate::model::operator(),
                    user,
                    password.clone(),
                )
                .await
                .map_err(|error| anyhow::anyhow!(error.message))?;
                if username == "admin" {
                    admin = Some(("admin".to_owned(), password.clone()));
                }
            }
        }
    }
    // One demo key at a time: the previous run's are revoked.
    let now = chrono::Utc::now().timestamp_micros();
    for key in store.list_api_keys().await? {
        if key.name == "demo" && key.revoked_at.is_none() {
            store.revoke_api_key(&key.id, now).await?;
        }
    }
    let (key, row) = new_key("demo", Role::Admin, now);
    store.insert_api_key(&row).await?;
    Ok(Access { key, admin })
}

async fn seed(state: &AppState) -> anyhow::Result<()> {
    let store = &state.store;
    let now = chrono::Utc::now().timestamp_micros();
    let today = chrono::Utc::now().date_naive();
    for (index, (id, name, region, industries, level)) in REPS.iter().enumerate() {
        let mut document = json!({
            "id": id, "name": name, "regions": [region], "industries": industries, "level": level,
            "weight": if *level >= 4 { 2.0 } else { 1.0 },
            "caps": {"max_open": 120, "max_per_day": 40},
            "time_zone": "Asia/Shanghai",
            "working_hours": {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"], "thu": ["09:00-18:00"], "fri": ["09:00-18:00"]},
            "languages": if index % 5 == 0 { json!(["zh", "en"]) } else { json!(["zh"]) },
        });
        if *id == "liu-yang" {
            let until = today + chrono::Duration::days(5);
            document["leaves"] = json!([{"from": today.to_string(), "until": until.to_string()}]);
        }
        if *id == "yang-fan" {
            document["status"] = json!("paused");
        }
        if *id == "zhao-lei" {
            // A new rep ramping up: half weight, a daily cap, a weekly floor.
            document["weight"] = json!(0.5);
            document["caps"] = json!({"max_open": 30, "max_per_day": 8, "min_per_week": 10});
        }
        let status = document["status"].as_str().unwrap_or("active").to_owned();
        store
            .upsert_rep(&RepRow {
                id: (*id).to_owned(),
                name: (*name).to_owned(),
                status,
                document: document.to_string(),
                created_at: now,
                updated_at: now,
                version: 1,
            })
            .await?;
    }
    let members = |ids: &[&str]| {
        json!(
            ids.iter()
                .map(|id| json!({"rep_id": id}))
                .collect::<Vec<_>>()
        )
    };
    let teams = [
        (
            "east",
            "华东销售组",
            members(&[
                "zhang-wei",
                "wang-fang",
                "li-na",
                "liu-yang",
                "chen-jing",
                "yang-fan",
                "zhao-lei",
                "lin-feng",
            ]),
            json!({"type": "fair_share", "window": "week"}),
            json!({"team": "national"}),
        ),
        (
            "south",
            "华南销售组",
            members(&[
                "zhou-jie", "wu-min", "xu-qiang", "sun-li", "zhu-lin", "he-xue",
            ]),
            json!({"type": "round_robin"}),
            json!({"team": "national"}),
        ),
        (
            "key_accounts",
            "大客户组",
            members(&[
                "hu-bin", "guo-jing", "he-xue", "lin-feng", "gao-jie", "luo-yu",
            ]),
            json!({"type": "best_match"}),
            json!({"pool": "public"}),
        ),
        (
            "national",
            "全国销售组",
            members(&["huang-ting", "ma-chao", "gao-jie", "luo-yu", "guo-jing"]),
            json!({"type": "least_loaded"}),
            json!({"pool": "public"}),
        ),
    ];
    for (id, name, members, strategy, overflow) in teams {
        let document = json!({"id": id, "name": name, "members": members, "default_strategy": strategy,
                              "overflow": overflow, "hours_policy": "in_hours", "away_fallback": true});
        store
            .upsert_team(&TeamRow {
                id: id.to_owned(),
                name: name.to_owned(),
                document: document.to_string(),
                created_at: now,
                updated_at: now,
                version: 1,
            })
            .await?;
    }
    let rules = json!({
        "name": "演示规则",
        "tagging": [
            {"id": "big", "when": {"field": "company_size", "op": "gte", "value": 1000}, "add_tags": ["大客户"]},
            {"id": "urgent", "when": {"field": "urgency", "op": "equals", "value": "紧急"}, "add_tags": ["紧急"]}
        ],
        "scoring": {"base": 20, "rules": [
            {"id": "big", "when": {"field": "tags", "op": "contains", "value": "大客户"}, "points": 40},
            {"id": "budget", "when": {"field": "budget", "op": "gte", "value": 500000}, "points": 30},
            {"id": "event", "when": {"field": "source", "op": "equals", "value": "展会"}, "points": 10}
        ], "tiers": [{"min_score": 80, "priority": "urgent"}, {"min_score": 60, "priority": "high"}]},
        "rules": [
            {"id": "vip", "name": "VIP 给高绩效", "when": {"field": "priority", "op": "equals", "value": "urgent"},
             "target": {"team": "key_accounts"}, "owner_affinity": true, "hours": "any_time", "sla_policy": "vip",
             "prefers": [{"field": "rep.industries", "op": "contains", "ref": "industry"}]},
            {"id": "east", "name": "华东线索", "when": {"field": "region", "op": "equals", "value": "华东"},
             "target": {"team": "east"}, "owner_affinity": true,
             "prefers": [{"field": "rep.industries", "op": "contains", "ref": "industry"}]},
            {"id": "south", "name": "华南线索", "when": {"field": "region", "op": "in", "value": ["华南", "西南"]},
             "target": {"team": "south"}, "owner_affinity": true},
            {"id": "rest", "name": "其他地区", "target": {"team": "national"}, "fallback": [{"pool": "public"}]}
        ],
        "default": [{"pool": "public"}]
    });
    // A faster first-response ladder for VIP leads, and claim rules for the public pool.
    let vip = json!({"id": "vip", "name": "VIP 快速响应", "steps": [
        {"after": "15m", "action": "remind"}, {"after": "1h", "action": "escalate"},
        {"after": "2h", "action": "reclaim"}], "hop_limit": 2,
        "cadence": {"recycle_after": "30d", "warn_before": "3d"}});
    store
        .upsert_setting(
            Setting::SlaPolicies,
            &DocRow {
                id: "vip".into(),
                name: "VIP 快速响应".into(),
                document: vip.to_string(),
                created_at: now,
                updated_at: now,
                version: 1,
            },
        )
        .await?;
    let public = json!({"id": "public", "name": "公海", "claims_per_day": 10, "cooldown": "7d",
        "touch_within": "24h", "protection": {"initial": "15d", "extend": "7d", "max": "30d"}});
    store
        .upsert_setting(
            Setting::Pools,
            &DocRow {
                id: "public".into(),
                name: "公海".into(),
                document: public.to_string(),
                created_at: 0,
                updated_at: now,
                version: 1,
            },
        )
        .await?;
    // The month began under rules without the VIP rule; halfway through, the manager added
    // it (the dashboard compares the two versions).
    let mut first = rules.clone();
    if let Some(list) = first["rules"].as_array_mut() {
        list.retain(|rule| rule["id"] != "vip");
    }
    first["note"] = json!("按区域分给华东、华南和全国销售组");
    let mut rules = rules;
    rules["note"] = json!("新增 VIP 规则：紧急线索交给大客户组，15 分钟内响应");

    // The defaults carry Chinese names in the Chinese demo.
    for (setting, id, name, document) in [
        (
            Setting::SlaPolicies,
            "default",
            "标准响应",
            json!({"id": "default", "name": "标准响应", "steps": [
                {"after": "1h", "action": "remind"}, {"after": "24h", "action": "escalate"},
                {"after": "48h", "action": "reclaim"}], "hop_limit": 3}),
        ),
        (
            Setting::Calendars,
            "default",
            "工作时间",
            json!({"id": "default", "name": "工作时间", "time_zone": "Asia/Shanghai", "hours": {
                "mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"],
                "thu": ["09:00-18:00"], "fri": ["09:00-18:00"]}}),
        ),
    ] {
        store
            .upsert_setting(
                setting,
                &DocRow {
                    id: id.into(),
                    name: name.into(),
                    document: document.to_string(),
                    created_at: 0,
                    updated_at: now,
                    version: 1,
                },
            )
            .await?;
    }
    history(state, &mut Dice(20261126), [first, rules]).await?;
    // A web form posting leads with its public token.
    let form = json!({"id": "site-form", "name": "官网表单", "auth": "token", "token": "demo-form-token",
        "mapping": {"name": "姓名", "phone": "手机", "company": "公司", "province": "省份", "industry": "行业"},
        "defaults": {"source": "官网"}});
    store
        .upsert_setting(
            Setting::IntakeSources,
            &DocRow {
                id: "site-form".into(),
                name: "官网表单".into(),
                document: form.to_string(),
                created_at: now,
                updated_at: now,
                version: 1,
            },
        )
        .await?;
    Ok(())
}

/// What the demo does next to one lead, at a planned time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// A new lead comes in (its index in the generated list).
    Arrive(usize),
    /// The owner the lead had when it was planned follows up (a first response or a later
    /// touch); nothing when someone else owns it by then.
    Touch {
        lead: String,
        owner: String,
    },
    Qualify {
        lead: String,
        owner: String,
    },
    Close {
        lead: String,
        owner: String,
        won: bool,
    },
    /// The owner gives the lead back to the public pool.
    Release {
        lead: String,
        owner: String,
    },
    /// A rep takes a lead from the public pool.
    Claim {
        lead: String,
        rep: usize,
    },
    /// The manager publishes the next rule set.
    Publish(usize),
}

/// The steps to come, soonest first (ties in the order planned).
#[derive(Default)]
struct Plan {
    steps: std::collections::BinaryHeap<std::cmp::Reverse<(i64, u64, Step)>>,
    planned: u64,
    /// The `(lead, owner)` pairs already given a plan.
    owners: std::collections::HashSet<(String, String)>,
}

impl Plan {
    fn push(&mut self, when: i64, step: Step) {
        self.planned += 1;
        self.steps
            .push(std::cmp::Reverse((when, self.planned, step)));
    }

    fn next_time(&self) -> Option<i64> {
        self.steps
            .peek()
            .map(|std::cmp::Reverse((when, _, _))| *when)
    }

    fn pop(&mut self) -> Option<(i64, Step)> {
        self.steps
            .pop()
            .map(|std::cmp::Reverse((when, _, step))| (when, step))
    }
}

/// Micros in a minute, an hour, a day.
const MINUTE: i64 = 60_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Shanghai is UTC+8 all year.
const SHANGHAI: i64 = 8 * HOUR;

/// Moves `at` into a working day's 09:00–20:00 in Shanghai (reps answer in the evening too,
/// not at night), keeping the minutes past the hour so times do not all line up.
fn in_working_hours(at: i64, dice: &mut Dice) -> i64 {
    let local = at + SHANGHAI;
    let hour = local.rem_euclid(DAY) / HOUR;
    let day_start = local - local.rem_euclid(DAY);
    let moved = if hour < 9 {
        day_start + 9 * HOUR + dice.next(90) as i64 * MINUTE
    } else if hour >= 20 {
        day_start + DAY + 9 * HOUR + dice.next(90) as i64 * MINUTE
    } else {
        local
    };
    moved - SHANGHAI
}

/// Each rep's habit: 1 answers fast and rarely lets a lead wait, 3 is slow.
fn habit(owner: &str) -> i64 {
    REPS.iter()
        .position(|rep| rep.0 == owner)
        .map_or(2, |index| 1 + (index as i64 * 7) % 3)
}

/// Plans what the owner of each lead that got a new owner since the last look will do: answer
/// after minutes or hours (or not, leaving it to the SLA clock), then qualify, close, give it
/// back or keep following up, days later.
async fn plan_owners(
    store: &store::Store,
    plan: &mut Plan,
    now: i64,
    dice: &mut Dice,
) -> anyhow::Result<()> {
    let leads = store
        .list_leads(&store::LeadFilter {
            limit: 1000,
            ..Default::default()
        })
        .await?;
    for lead in leads {
        let (Some(owner), Some(assigned)) = (lead.owner_id.clone(), lead.assigned_at) else {
            continue;
        };
        if lead.first_response_at.is_some() || !plan.owners.insert((lead.id.clone(), owner.clone()))
        {
            continue;
        }
        let habit = habit(&owner);
        // Some leads wait for the clock: one in twelve for a fast rep, one in six for a slow one.
        if dice.next(24) < 2 * habit as usize {
            continue;
        }
        let delay = match dice.next(20) {
            0..=9 => (1 + dice.next(10) as i64) * MINUTE * habit,
            10..=15 => (10 + dice.next(30) as i64) * MINUTE * habit,
            16..=18 => (1 + dice.next(4) as i64) * HOUR,
            _ => (20 + dice.next(10) as i64) * HOUR,
        };
        let touch = in_working_hours(assigned.max(now) + delay, dice);
        let (lead, owner) = (lead.id, owner);
        plan.push(
            touch,
            Step::Touch {
                lead: lead.clone(),
                owner: owner.clone(),
            },
        );
        let later = |days: usize, dice: &mut Dice| {
            let at = touch + (1 + dice.next(days)) as i64 * DAY + dice.next(8) as i64 * HOUR;
            in_working_hours(at, dice)
        };
        match dice.next(20) {
            0 | 1 => plan.push(later(3, dice), Step::Release { lead, owner }),
            2..=8 => {
                let qualified = later(4, dice);
                plan.push(
                    qualified,
                    Step::Qualify {
                        lead: lead.clone(),
                        owner: owner.clone(),
                    },
                );
                if dice.next(3) < 2 {
                    let closed =
                        in_working_hours(qualified + (3 + dice.next(10)) as i64 * DAY, dice);
                    let won = dice.next(5) < 3;
                    plan.push(closed, Step::Close { lead, owner, won });
                }
            }
            9 | 10 => {
                let lost = later(5, dice);
                plan.push(
                    lost,
                    Step::Close {
                        lead,
                        owner,
                        won: false,
                    },
                );
            }
            _ => {
                // Worked on: more touches, some leads then left untouched for days.
                for _ in 0..dice.next(4) {
                    let again = later(6, dice);
                    plan.push(
                        again,
                        Step::Touch {
                            lead: lead.clone(),
                            owner: owner.clone(),
                        },
                    );
                }
            }
        }
    }
    Ok(())
}

/// A month of history, replayed through a routing worker whose clock the demo moves: 300 leads
/// arrive over the last 30 days, mostly in office hours; each owner answers after minutes or
/// hours, some not at all until the SLA clock reminds, escalates and reclaims; some leads go back
/// to the public pool and are claimed again; deals close days later, some with feedback. Every
/// figure on the dashboard comes out of what the worker and its clocks really did.
async fn history(
    state: &AppState,
    dice: &mut Dice,
    rule_sets: [serde_json::Value; 2],
) -> anyhow::Result<()> {
    let store = &state.store;
    let real_now = chrono::Utc::now().timestamp_micros();
    let local_today = (real_now + SHANGHAI) - (real_now + SHANGHAI).rem_euclid(DAY);
    let start = local_today - 30 * DAY - SHANGHAI;
    let at = |micros: i64| chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    let clock = Clock::manual(at(start));
    let router = Router::start_with_clock(store.clone(), clock.clone());
    let failed = |error: server::error::ApiError| anyhow::anyhow!(error.message);
    let change = |id: &str, op: LeadOp| {
        let router = router.clone();
        let id = id.to_owned();
        async move { router.change(&id, op, "demo").await }
    };

    let mut inputs = Vec::new();
    let mut plan = Plan::default();
    plan.push(start, Step::Publish(0));
    plan.push(start + 15 * DAY + 10 * HOUR, Step::Publish(1));
    // Arrivals by day: weekdays busier than weekends, the month busier towards its end.
    let weights: Vec<f64> = (0..30)
        .map(|day| {
            let date = chrono::DateTime::from_timestamp_micros(start + SHANGHAI + day * DAY + HOUR)
                .unwrap_or_default()
                .date_naive();
            let weekend = matches!(
                chrono::Datelike::weekday(&date),
                chrono::Weekday::Sat | chrono::Weekday::Sun
            );
            (if weekend { 0.35 } else { 1.0 }) * (0.8 + day as f64 / 60.0)
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let day_of = |index: usize| {
        let at = (index as f64 + 0.5) / 300.0 * total;
        let mut sum = 0.0;
        for (day, weight) in weights.iter().enumerate() {
            sum += weight;
            if at < sum {
                return day as i64;
            }
        }
        29
    };
    for index in 0..300 {
        let province = dice.pick(PROVINCES);
        let repeat = index > 20 && dice.next(10) == 0;
        let phone = if repeat {
            format!("139{:08}", dice.next(20))
        } else {
            format!("1{}{:09}", 3 + dice.next(7), dice.next(1_000_000_000))
        };
        let size = [20, 80, 300, 1200, 5000][dice.next(5)];
        let budget = [50000, 120000, 300000, 800000][dice.next(4)];
        let urgency = ["普通", "普通", "紧急"][dice.next(3)];
        let lead = json!({
            "external_id": format!("demo-{index:04}"),
            "name": format!("{}{}", dice.pick(SURNAMES), dice.pick(GIVEN)),
            "phone": phone,
            "company": dice.pick(COMPANIES),
            "province": province,
            "industry": dice.pick(INDUSTRIES),
            "source": dice.pick(SOURCES),
            "company_size": size,
            "budget": budget,
            "urgency": urgency,
        });
        let input: LeadInput = serde_json::from_value(lead)?;
        inputs.push(input.normalised().map_err(failed)?);
        // Mostly in office hours, some in the evening.
        let day = day_of(index);
        let hour = if dice.next(5) == 0 {
            18 + dice.next(5) as i64
        } else {
            9 + dice.next(9) as i64
        };
        let when = local_today - 30 * DAY + day * DAY + hour * HOUR + dice.next(60) as i64 * MINUTE
            - SHANGHAI;
        plan.push(when.min(real_now - MINUTE), Step::Arrive(index));
    }

    let mut next_tick = start + HOUR;
    loop {
        let next_step = plan.next_time().unwrap_or(real_now).min(real_now);
        // The clocks run every hour up to the next step: reminders, escalations, reclaims, the
        // hold queue's sweep; then owners of leads that moved get a plan.
        if next_tick <= next_step {
            clock.set(at(next_tick));
            while router.tick(at(next_tick)).await.map_err(failed)? > 0 {}
            router.sweep().await.map_err(failed)?;
            plan_owners(store, &mut plan, next_tick, dice).await?;
            next_tick += HOUR;
            continue;
        }
        let Some((when, step)) = plan.pop() else {
            break;
        };
        if when >= real_now {
            continue;
        }
        clock.set(at(when));
        // A step on a lead that moved on meanwhile (reclaimed, closed) is skipped: the demo
        // does only what a rep could still do then.
        let still_owns = |lead: &Option<store::LeadRow>, owner: &str| {
            lead.as_ref().is_some_and(|lead| {
                lead.owner_id.as_deref() == Some(owner)
                    && !matches!(lead.status.as_str(), "won" | "lost" | "invalid")
            })
        };
        match step {
            Step::Arrive(index) => {
                router
                    .create(vec![inputs[index].clone()], "demo")
                    .await
                    .map_err(failed)?;
                plan_owners(store, &mut plan, when, dice).await?;
            }
            Step::Touch { lead, owner } => {
                if still_owns(&store.get_lead(&lead).await?, &owner) {
                    let kind = ["call", "wechat", "call", "visit", "call"][dice.next(5)];
                    let outcome = ["reached", "no_answer", "interested", "reached"][dice.next(4)];
                    let activity: ActivityInput = serde_json::from_value(json!({
                        "kind": kind, "outcome": outcome, "note": "演示跟进记录"}))?;
                    change(&lead, LeadOp::Activity(activity)).await.ok();
                }
            }
            Step::Qualify { lead, owner } => {
                if still_owns(&store.get_lead(&lead).await?, &owner) {
                    let patch = LeadPatch {
                        status: Some(LeadStatus::Qualified),
                        ..LeadPatch::default()
                    };
                    change(&lead, LeadOp::Update(patch)).await.ok();
                }
            }
            Step::Close { lead, owner, won } => {
                if !still_owns(&store.get_lead(&lead).await?, &owner) {
                    continue;
                }
                let patch = if won {
                    LeadPatch {
                        status: Some(LeadStatus::Won),
                        amount: Some([80_000.0, 150_000.0, 268_000.0, 420_000.0][dice.next(4)]),
                        ..LeadPatch::default()
                    }
                } else {
                    LeadPatch {
                        status: Some(LeadStatus::Lost),
                        lost_reason: Some(
                            ["预算不足", "选择了竞品", "暂无需求"][dice.next(3)].to_owned(),
                        ),
                        ..LeadPatch::default()
                    }
                };
                if change(&lead, LeadOp::Update(patch)).await.is_ok() && won {
                    let (kind, score) = if dice.next(2) == 0 {
                        ("nps", 5 + dice.next(6))
                    } else {
                        ("csat", 3 + dice.next(3))
                    };
                    let feedback: FeedbackInput =
                        serde_json::from_value(json!({"kind": kind, "score": score}))?;
                    change(&lead, LeadOp::Feedback(feedback)).await.ok();
                }
            }
            Step::Release { lead, owner } => {
                if !still_owns(&store.get_lead(&lead).await?, &owner) {
                    continue;
                }
                let reason = ["联系不上", "客户要求换人", "不在负责区域"][dice.next(3)];
                let op = LeadOp::Release {
                    reason: Some(reason.to_owned()),
                    pool_id: None,
                };
                // Half are claimed again within a day or so; the rest wait in the pool.
                if change(&lead, op).await.is_ok() && dice.next(2) == 0 {
                    let claim = in_working_hours(when + (2 + dice.next(30)) as i64 * HOUR, dice);
                    let rep = dice.next(REPS.len());
                    plan.push(claim, Step::Claim { lead, rep });
                }
            }
            Step::Publish(index) => {
                let document = &rule_sets[index];
                let name = document["name"].as_str().map(str::to_owned);
                let version = store
                    .insert_rule_set(name.as_deref(), &document.to_string(), when, Some("cli"))
                    .await?;
                store.publish_rule_set(version, when, |_| None).await?;
            }
            Step::Claim { lead, rep } => {
                let op = LeadOp::Claim {
                    rep_id: REPS[rep].0.to_owned(),
                };
                change(&lead, op).await.ok();
            }
        }
    }
    Ok(())
}
