//! The demo workspace: three teams and twenty reps with realistic names, regions, industries,
//! caps and hours, a published rule set, and a few hundred leads routed through the same path
//! as the API.

use anyhow::Context as _;
use engine::LeadStatus;
use serde_json::json;
use server::AppState;
use server::auth::{Role, new_key};
use server::leads::LeadInput;
use server::routing::{ActivityInput, Created, FeedbackInput, LeadOp, LeadPatch};
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
    let version = store
        .insert_rule_set(Some("演示规则"), &rules.to_string(), now)
        .await?;
    store.publish_rule_set(version, now, |_| None).await?;

    let mut dice = Dice(20261126);
    let mut leads = Vec::new();
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
        leads.push(
            input
                .normalised()
                .map_err(|error| anyhow::anyhow!(error.message))?,
        );
    }
    let mut owned = Vec::new();
    for chunk in leads.chunks(100) {
        let results = state
            .router
            .create(chunk.to_vec(), "demo")
            .await
            .map_err(|error| anyhow::anyhow!(error.message))?;
        for result in results {
            if let Ok(Created::New { lead, .. }) = result
                && lead.owner_id.is_some()
            {
                owned.push(lead.id);
            }
        }
    }
    follow_up(state, &owned, &mut dice).await?;
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

/// Some history to look at: first responses on most assigned leads, a few won and lost, some
/// customer feedback, a few leads given back to the public pool.
async fn follow_up(state: &AppState, owned: &[String], dice: &mut Dice) -> anyhow::Result<()> {
    let change = |id: &str, op: LeadOp| {
        let router = state.router.clone();
        let id = id.to_owned();
        async move {
            router
                .change(&id, op, "demo")
                .await
                .map_err(|error| anyhow::anyhow!(error.message))
        }
    };
    for (index, id) in owned.iter().enumerate() {
        if index % 12 == 5 {
            // Given back to the public pool (公海) for reps to claim.
            let reason = ["联系不上", "客户要求换人", "不在负责区域"][dice.next(3)];
            change(
                id,
                LeadOp::Release {
                    reason: Some(reason.to_owned()),
                    pool_id: None,
                },
            )
            .await?;
            continue;
        }
        if index % 3 == 2 {
            // Left for the SLA clock.
            continue;
        }
        let kind = ["call", "wechat", "call", "visit"][dice.next(4)];
        let outcome = ["reached", "no_answer", "interested", "reached"][dice.next(4)];
        let activity: ActivityInput = serde_json::from_value(json!({
            "kind": kind, "outcome": outcome, "note": "演示跟进记录"}))?;
        change(id, LeadOp::Activity(activity)).await?;
        let patch = match index % 10 {
            0 => LeadPatch {
                status: Some(LeadStatus::Won),
                amount: Some([80_000.0, 150_000.0, 420_000.0][dice.next(3)]),
                ..LeadPatch::default()
            },
            3 => LeadPatch {
                status: Some(LeadStatus::Lost),
                lost_reason: Some(["预算不足", "选择了竞品", "暂无需求"][dice.next(3)].to_owned()),
                ..LeadPatch::default()
            },
            _ => continue,
        };
        let won = patch.status == Some(LeadStatus::Won);
        change(id, LeadOp::Update(patch)).await?;
        if won {
            let feedback: FeedbackInput =
                serde_json::from_value(json!({"kind": "nps", "score": 6 + dice.next(5)}))?;
            change(id, LeadOp::Feedback(feedback)).await?;
        }
    }
    Ok(())
}
