//! The console's words in Chinese and English. The language comes from the `lang` cookie, else
//! the browser's `Accept-Language`, else Chinese.

use axum::http::HeaderMap;

/// A console language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let cookie = headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == "lang")
            .map(|(_, value)| value.to_owned());
        match cookie.as_deref() {
            Some("en") => return Lang::En,
            Some("zh") => return Lang::Zh,
            _ => {}
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("zh");
        // The first language the browser names that we speak.
        for part in accept.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Zh
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> (&'static str, &'static str) {
        match self {
            Lang::Zh => ("en", "English"),
            Lang::En => ("zh", "中文"),
        }
    }
}

/// The console's words: `(key, Chinese, English)`.
const WORDS: &[(&str, &str, &str)] = &[
    ("app", "Leadroute 线索分配", "Leadroute"),
    ("dashboard", "看板", "Dashboard"),
    ("leads", "线索", "Leads"),
    ("my_leads", "我的线索", "My leads"),
    ("pool", "公海", "Pool"),
    ("sign_in", "登录", "Sign in"),
    ("sign_out", "退出", "Sign out"),
    ("username", "用户名", "Username"),
    ("password", "密码", "Password"),
    (
        "bad_login",
        "用户名或密码错误",
        "Wrong username or password",
    ),
    (
        "locked",
        "登录失败次数过多，请稍后再试",
        "Too many failed sign-ins; try again later",
    ),
    ("last_7", "近 7 天", "Last 7 days"),
    ("last_30", "近 30 天", "Last 30 days"),
    ("all_teams", "全部团队", "All teams"),
    ("show", "查看", "Show"),
    ("leads_in", "新进线索", "Leads in"),
    ("assigned", "已分配", "Assigned"),
    ("held", "待分配", "Waiting (hold queue)"),
    ("in_pool", "公海中", "In the pool"),
    ("first_response", "首次响应", "First response"),
    ("p50", "中位数", "p50"),
    ("p90", "90 分位", "p90"),
    ("sla_met", "SLA 达成率", "SLA met"),
    ("reclaims", "收回次数", "Reclaims"),
    ("conversion_source", "各来源转化率", "Conversion by source"),
    ("conversion_rule", "各规则转化率", "Conversion by rule"),
    (
        "fairness",
        "分配公平性：实际占比 / 目标占比",
        "Fairness: share against target share",
    ),
    ("leaderboard", "赢单排行", "Leaderboard"),
    ("won", "赢单", "Won"),
    ("amount", "金额", "Amount"),
    ("rep", "销售", "Rep"),
    ("no_data", "暂无数据", "No data yet"),
    ("search", "搜索", "Search"),
    ("status", "状态", "Status"),
    ("owner", "负责人", "Owner"),
    ("source", "来源", "Source"),
    ("created", "创建时间", "Created"),
    ("any", "全部", "Any"),
    ("next", "下一页", "Next page"),
    ("timeline", "时间线", "Timeline"),
    ("intake", "线索进入", "Lead came in"),
    ("decision", "分配决策", "Routing decision"),
    ("activity", "跟进记录", "Follow-up"),
    ("event", "事件", "Event"),
    ("reassign", "改派", "Reassign"),
    ("reason", "原因", "Reason"),
    ("due", "待办", "Due"),
    ("log_follow_up", "记录跟进", "Log a follow-up"),
    ("note", "备注", "Note"),
    ("call", "电话", "Call"),
    ("wechat", "微信", "WeChat"),
    ("visit", "拜访", "Visit"),
    ("meeting", "会议", "Meeting"),
    ("email", "邮件", "Email"),
    ("sms", "短信", "SMS"),
    ("my_status", "我的状态", "My status"),
    ("active", "接单中", "Active"),
    ("paused", "暂停", "Paused"),
    ("on_leave", "休假", "On leave"),
    ("save", "保存", "Save"),
    ("claim", "领取", "Claim"),
    ("release", "释放到公海", "Release to the pool"),
    ("allowance", "今日可领取", "Claims left today"),
    ("unlimited", "不限", "no limit"),
    ("nothing_due", "没有待办的线索", "Nothing waiting"),
    ("pool_empty", "公海里没有线索", "The pool is empty"),
    ("new_lead", "新线索", "New lead"),
    ("phone", "电话", "Phone"),
    ("company", "公司", "Company"),
    ("region", "区域", "Region"),
    ("industry", "行业", "Industry"),
    ("priority", "优先级", "Priority"),
    ("error", "出错了", "Something went wrong"),
    ("not_found", "没有找到", "Not found"),
    ("rules", "分配规则", "Rules"),
    ("admin", "管理", "Admin"),
    ("reps", "销售", "Reps"),
    ("teams", "团队", "Teams"),
    ("calendars", "工作日历", "Calendars"),
    ("sla_policies", "SLA 策略", "SLA policies"),
    ("pools", "公海设置", "Pools"),
    ("channels", "通知通道", "Channels"),
    ("intake_sources", "线索来源", "Intake sources"),
    ("accounts", "用户与密钥", "Users and keys"),
    ("users", "用户", "Users"),
    ("keys", "API 密钥", "API keys"),
    ("new", "新建", "New"),
    (
        "document",
        "设置（JSON，null 清除字段）",
        "Settings (JSON; null clears a field)",
    ),
    ("delete", "删除", "Delete"),
    ("test_send", "发送测试消息", "Send a test message"),
    ("role", "角色", "Role"),
    ("create", "创建", "Create"),
    ("activate", "启用", "Activate"),
    ("deactivate", "停用", "Deactivate"),
    ("reset_password", "重置密码", "Reset password"),
    (
        "key_once",
        "新密钥（只显示这一次）",
        "New key (shown only this once)",
    ),
    ("revoke", "吊销", "Revoke"),
    ("revoked", "已吊销", "revoked"),
    ("weight", "权重", "Weight"),
    ("time_zone", "时区", "Time zone"),
    ("caps", "上限与下限", "Caps and floors"),
    (
        "working_hours",
        "工作时间（逗号分隔）",
        "Working hours (comma-separated)",
    ),
    (
        "leaves",
        "休假（每行 开始..结束）",
        "Leave (one from..until per line)",
    ),
    ("versions", "版本", "Versions"),
    ("version", "版本", "Version"),
    ("active_version", "生效中", "active"),
    ("edit", "编辑", "Edit"),
    ("rollback", "回滚到此版本", "Roll back to this version"),
    ("model_title", "线索评分模型", "Lead scoring model"),
    ("model_short", "评分模型", "Scoring"),
    (
        "model_train",
        "用已成交 / 输单线索训练",
        "Train on won and lost leads",
    ),
    ("model_publish", "发布此模型", "Publish this model"),
    (
        "model_none",
        "还没有模型。至少需要 200 条已关闭线索（成交、输单各 40 条）。",
        "No model yet. Training needs 200 closed leads, 40 won and 40 lost.",
    ),
    ("model_status_training", "训练中", "Training"),
    ("model_status_draft", "草稿", "Draft"),
    ("model_status_active", "生效中", "Active"),
    ("model_status_retired", "已停用", "Retired"),
    ("model_status_failed", "失败", "Failed"),
    ("model_status_interrupted", "已中断", "Interrupted"),
    ("model_examples", "样本", "Examples"),
    ("model_auc", "AUC（区分能力）", "AUC (how well it ranks)"),
    (
        "model_auc_help",
        "随机取一条成交和一条输单线索，成交那条得分更高的概率。0.5 等于瞎猜，0.7 以上有用，0.8 以上很好。",
        "The chance a random won lead scores above a random lost one. 0.5 is guessing, above 0.7 is useful, above 0.8 is good.",
    ),
    ("model_holdout", "留出检验", "Holdout test"),
    (
        "model_holdout_time",
        "用较早的线索训练，在最新的 20% 上检验",
        "Trained on older leads, tested on the newest 20%",
    ),
    (
        "model_holdout_stratified",
        "随机留出 30% 检验",
        "Tested on a random 30%",
    ),
    ("model_cv", "交叉验证", "Cross-validation"),
    (
        "model_log_loss",
        "对数损失（越低越好）",
        "Log loss (lower is better)",
    ),
    (
        "model_brier",
        "Brier 分数（越低越好）",
        "Brier score (lower is better)",
    ),
    ("model_baseline", "只用整体成交率", "win rate alone"),
    ("model_lift", "前 10% 的提升倍数", "Lift in the top tenth"),
    ("model_roc", "ROC 曲线", "ROC curve"),
    (
        "model_calibration",
        "校准：预测成交率与实际成交率（按十分位）",
        "Calibration: predicted and observed win rate by tenth",
    ),
    (
        "model_fields",
        "最影响成交概率的字段",
        "Fields that move the odds most",
    ),
    ("model_levels", "最强的因素", "Strongest factors"),
    ("model_weight", "权重（对数几率）", "Weight (log-odds)"),
    ("model_raises", "提高成交概率", "raises the odds"),
    ("model_lowers", "降低成交概率", "lowers the odds"),
    (
        "model_method",
        "逻辑回归；正则强度 λ 由交叉验证选出（对数损失最低）",
        "Logistic regression; regularisation λ chosen by cross-validation (lowest log loss)",
    ),
    (
        "model_file",
        "用文件训练（仅试用，不能发布）",
        "Trained on a file (to try out, not publishable)",
    ),
    ("win_probability", "成交概率", "Win probability"),
    ("model_schedule", "定期重训", "Scheduled retraining"),
    ("model_every", "重训频率", "Retrain"),
    ("model_every_off", "仅手动", "Only on demand"),
    ("model_every_1d", "每天", "Daily"),
    ("model_every_7d", "每周", "Weekly"),
    ("model_every_14d", "每两周", "Every two weeks"),
    ("model_every_30d", "每 30 天", "Every 30 days"),
    (
        "model_auto_publish",
        "新模型 AUC 达到下限时自动发布",
        "Publish a new model by itself when its AUC reaches the minimum",
    ),
    ("model_minimum_auc", "最低 AUC", "Minimum AUC"),
    ("model_next_run", "下次训练", "Next training"),
    ("model_last_run", "上次结果", "Last result"),
    (
        "model_schedule_help",
        "定期用最新的成交/丢单线索重训一个草稿；不开自动发布时，需人工发布才会替换当前模型。",
        "Trains a draft on the latest won and lost leads; unless auto-publish is on, it replaces the active model only when someone publishes it.",
    ),
    (
        "model_result_published",
        "已自动发布",
        "published by itself",
    ),
    (
        "model_result_draft",
        "草稿，待发布",
        "a draft, waiting to be published",
    ),
    (
        "model_result_below",
        "AUC 低于下限，未发布",
        "AUC below the minimum, not published",
    ),
    ("sim_try", "用历史线索试运行", "Try on history"),
    ("sim_days", "最近天数", "Last days"),
    ("sim_cancel", "停止回放", "Stop"),
    ("sim_title", "规则回放", "Simulation"),
    ("sim_recent", "最近的回放", "Recent simulations"),
    ("sim_running", "回放中", "Replaying"),
    ("sim_queued", "排队中", "Queued"),
    ("sim_done", "已完成", "Done"),
    ("sim_failed", "失败", "Failed"),
    ("sim_cancelled", "已取消", "Cancelled"),
    ("sim_interrupted", "已中断", "Interrupted"),
    ("sim_policy_a", "当前规则（A）", "Current rules (A)"),
    ("sim_policy_b", "草稿（B）", "Draft (B)"),
    ("sim_leads", "回放线索", "Leads replayed"),
    ("sim_assigned", "已分配", "Assigned"),
    (
        "sim_held",
        "等待分配（其中始终未分配）",
        "Held (never placed)",
    ),
    ("sim_wait", "等待时长中位数", "Median wait"),
    ("sim_pooled", "进入公海", "To the pool"),
    ("sim_cap_hits", "因上限跳过", "Passed over for a cap"),
    (
        "sim_outside_hours",
        "非工作时间分配",
        "Assigned outside hours",
    ),
    ("sim_gini", "分配不均（基尼系数）", "Unevenness (Gini)"),
    (
        "sim_deviation",
        "与目标份额最大偏差",
        "Largest gap to target share",
    ),
    ("sim_conversions", "预计成交", "Expected conversions"),
    ("sim_value", "预计成交金额", "Expected won value"),
    (
        "sim_first_response",
        "预计首次响应",
        "Expected first response",
    ),
    ("sim_sla_misses", "预计超时", "Expected SLA misses"),
    ("sim_moved", "换了负责人的线索", "Leads that change owner"),
    (
        "sim_fidelity",
        "A 与历史负责人一致",
        "A matches the recorded owner",
    ),
    (
        "sim_significant",
        "差异显著（95% 区间不含 0）",
        "a real difference (the 95% interval leaves out 0)",
    ),
    (
        "sim_not_significant",
        "差异不显著，可能只是噪声（95% 区间包含 0）",
        "not significant: it may be noise (the 95% interval includes 0)",
    ),
    (
        "sim_share",
        "份额（竖线为按权重的目标份额）",
        "Share (the mark is the share their weight implies)",
    ),
    ("sim_never_matched", "从未命中", "never matched"),
    (
        "sim_shadowed",
        "总被前面的规则抢先",
        "always taken by an earlier rule",
    ),
    ("sim_publish", "发布这个草稿", "Publish this draft"),
    ("sim_lead", "线索", "Lead"),
    ("sim_why", "原因", "Why"),
    (
        "sim_errors",
        "无法回放的行",
        "Rows that could not be replayed",
    ),
    (
        "sim_no_outcomes",
        "历史中没有成交结果，无法估计成交",
        "History has no outcomes to estimate conversions from",
    ),
    ("confirm", "我确认", "I confirm"),
    (
        "confirm_needed",
        "请先勾选确认",
        "Tick the confirmation first",
    ),
    ("rule", "规则", "Rule"),
    ("rule_id", "规则 ID", "Rule id"),
    ("name", "名称", "Name"),
    ("when", "条件", "When"),
    ("match_all", "满足全部", "all of"),
    ("match_any", "满足任一", "any of"),
    (
        "negate",
        "取反（不满足时命中）",
        "not (matches when the group does not)",
    ),
    ("field", "字段", "Field"),
    ("operator", "运算符", "Operator"),
    ("value", "值", "Value"),
    ("add_row", "添加条件", "Add a condition"),
    ("subgroup", "条件组", "Group"),
    ("add_group", "添加条件组", "Add a group"),
    ("remove", "删除", "Remove"),
    ("target", "分配给", "Target"),
    ("strategy", "分配策略", "Strategy"),
    ("team_default", "团队默认", "the team's"),
    (
        "affinity",
        "老客户归原负责人",
        "Known customers go to their owner",
    ),
    (
        "requires",
        "必须满足（销售条件）",
        "Requirements (rep conditions)",
    ),
    ("add_requirement", "添加要求", "Add a requirement"),
    (
        "prefers",
        "优先（销售条件，无人满足时逐条放宽）",
        "Preferences (relaxed from the last while nobody qualifies)",
    ),
    ("add_preference", "添加优先条件", "Add a preference"),
    (
        "advanced",
        "高级：其他设置（JSON，表单中填写的优先）",
        "Advanced: other settings (JSON; what the form sets wins)",
    ),
    (
        "tagging_scoring",
        "高级：默认去向等（JSON）",
        "Advanced: the default and more (JSON)",
    ),
    ("tagging", "自动标签", "Tagging"),
    ("tags", "标签", "Tags"),
    ("add_tag", "添加标签规则", "Add a tagging rule"),
    ("scoring", "线索评分", "Scoring"),
    ("base_score", "基础分", "Base score"),
    ("tiers", "分档（分数 优先级）", "Tiers (score priority)"),
    ("points", "加分", "Points"),
    ("add_score", "添加评分规则", "Add a scoring rule"),
    ("up", "上移", "Move up"),
    ("down", "下移", "Move down"),
    ("add_rule", "添加规则", "Add a rule"),
    ("check", "检查", "Check"),
    ("valid", "规则有效", "The rules are valid"),
    ("dry_run", "试运行", "Dry run"),
    ("sample", "样例线索（JSON）", "Sample lead (JSON)"),
    (
        "sample_lead",
        "或选一条已有线索",
        "Or pick an existing lead",
    ),
    ("dry_run_lead", "用这条线索试运行", "Dry run on this lead"),
    ("save_draft", "保存草稿", "Save draft"),
    ("publish", "发布", "Publish"),
    (
        "diff",
        "与生效版本的差异",
        "Changes against the active version",
    ),
    ("no_changes", "没有差异", "No changes"),
    ("inactive", "停用", "Inactive"),
    ("max_open", "保有量上限", "Most open leads"),
    ("max_per_day", "每日上限", "Most per day"),
    ("max_per_week", "每周上限", "Most per week"),
    ("max_per_month", "每月上限", "Most per month"),
    ("min_per_week", "每周下限", "Fewest per week"),
    ("min_per_month", "每月下限", "Fewest per month"),
    ("mon", "周一", "Mon"),
    ("tue", "周二", "Tue"),
    ("wed", "周三", "Wed"),
    ("thu", "周四", "Thu"),
    ("fri", "周五", "Fri"),
    ("sat", "周六", "Sat"),
    ("sun", "周日", "Sun"),
    (
        "open_hours",
        "营业时间（逗号分隔）",
        "Open hours (comma-separated)",
    ),
    (
        "holidays",
        "节假日（每行一个日期，或 开始..结束）",
        "Holidays (a date per line, or from..until)",
    ),
    (
        "makeup_days",
        "调休上班日（周末照常上班的日期）",
        "Make-up workdays (weekend days that are open)",
    ),
    (
        "makeup_hours",
        "调休日营业时间（留空同第一个工作日）",
        "Hours on make-up days (empty: the first open weekday's)",
    ),
    ("team_calendar", "团队的日历", "the team's calendar"),
    ("hop_limit", "最多改派次数", "Reassignments at most"),
    ("ladder", "首次响应阶梯", "First-response ladder"),
    (
        "after",
        "分配后（营业时间）",
        "After assignment (business time)",
    ),
    ("then", "动作", "Then"),
    ("remind", "提醒负责人", "Remind the owner"),
    ("escalate", "提醒负责人和主管", "Remind owner and manager"),
    ("reclaim", "收回并改派", "Reclaim and reassign"),
    ("to_pool", "退回公海", "Move to the pool"),
    (
        "ladder_help",
        "时长如 30m、1h、24h；留空的行不保存。负责人第一次跟进后阶梯停止。",
        "Durations like 30m, 1h, 24h; blank rows are not saved. The ladder stops at the owner's first follow-up.",
    ),
    ("cadence", "跟进节奏", "Follow-up cadence"),
    (
        "recycle_after",
        "多久未跟进退回公海",
        "Back to the pool after no follow-up for",
    ),
    ("warn_before", "提前提醒", "Warn this long before"),
    ("compare_with", "比较对象", "Compared with"),
    ("custom_fields", "自定义字段", "Custom fields"),
    ("manager", "主管", "Manager"),
    ("channel_kind", "类型", "Kind"),
    ("recent_deliveries", "最近发送记录", "Latest deliveries"),
    ("assign_to", "分配给", "Assign to"),
    ("coming_up", "接下来", "Coming up"),
    ("sla_step", "首次响应时效", "First-response SLA"),
    ("timer_callback", "回访提醒", "Callback reminder"),
    (
        "timer_recycle_warning",
        "即将回收提醒",
        "Warning before recycling",
    ),
    (
        "timer_recycle",
        "长期未跟进，退回公海",
        "Back to the pool for lack of follow-up",
    ),
    (
        "timer_claim_touch",
        "领取后未跟进，退回公海",
        "Back to the pool if the claim is not worked",
    ),
    ("timer_protection_end", "保护期结束", "Protection ends"),
    ("held_only", "只看待分配（等待队列）", "Only the hold queue"),
    (
        "next_follow_up",
        "下次跟进（提醒我）",
        "Next follow-up (remind me)",
    ),
    ("change_status", "更新状态", "Change status"),
    ("leave_from", "休假从", "Leave from"),
    ("leave_until", "到", "until"),
    ("won_amount", "赢单金额", "Amount won"),
    ("lost_reason", "输单原因", "Why lost"),
    ("assign_ticked", "分配勾选的线索", "Assign the ticked leads"),
    ("distribute_team", "分给团队", "Across team"),
    ("distribute_band_input", "公平区间 ±", "Fairness band ±"),
    (
        "distribute_preview",
        "批量最优分配（先预览）",
        "Distribute optimally (preview first)",
    ),
    (
        "distribute_title",
        "批量最优分配预览",
        "Optimal distribution: preview",
    ),
    ("distribute_why", "原因", "Why"),
    ("distribute_shares", "各销售分到", "Each rep's share"),
    ("distribute_leads", "条数", "Leads"),
    ("distribute_band", "公平区间", "Band"),
    ("distribute_confirm", "确认分配", "Assign as planned"),
    ("cancel", "取消", "Cancel"),
    ("recent_receipts", "最近接收记录", "Latest receipts"),
    ("attempts", "尝试次数", "Attempts"),
    ("next_attempt", "下次尝试", "Next attempt"),
    ("last_error", "最近错误", "Last error"),
    ("retry", "重新发送", "Send again"),
    ("delivery_pending", "待发送", "pending"),
    ("delivery_sent", "已送达", "sent"),
    ("delivery_dead", "已放弃（死信）", "dead letter"),
    ("received", "接收时间", "Received"),
    ("outcome", "结果", "Outcome"),
    ("delivery", "投递 ID", "Delivery id"),
    ("lead", "线索", "Lead"),
    ("intake_accepted", "已接收", "accepted"),
    ("intake_duplicate", "重复（已忽略）", "duplicate (ignored)"),
    ("intake_rejected", "已拒绝", "rejected"),
    ("audit", "操作日志", "Audit log"),
    ("actor", "操作人", "Who"),
    ("action", "操作", "What"),
    ("audit_target", "对象", "On"),
    ("detail", "内容", "Change"),
    ("at", "时间", "When"),
    ("older", "更早", "Older"),
    (
        "fallback",
        "无人可分配时（依次尝试）",
        "When nobody can take it (tried in order)",
    ),
    (
        "fb_next_rule",
        "继续匹配下一条规则",
        "Go on to the next rule",
    ),
    ("fb_overflow", "团队的溢出设置", "The team's overflow"),
    ("fb_hold", "进入等待队列", "Wait in the hold queue"),
    (
        "fb_default",
        "默认：团队溢出，然后等待",
        "Default: the team's overflow, then wait",
    ),
    (
        "window",
        "生效时间（都不填：任何时间）",
        "When the rule applies (all empty: always)",
    ),
    ("window_hours", "时段", "Hours"),
    (
        "timing",
        "生效时间、工作时间与 SLA",
        "When it applies, working hours and SLA",
    ),
    ("window_from", "开始日期", "From"),
    ("window_until", "结束日期", "Until"),
    ("intake_address", "接收地址", "Post to"),
    ("intake_auth", "验证方式", "Authentication"),
    (
        "auth_token",
        "公开令牌（网页表单）",
        "Public token (web form)",
    ),
    ("auth_jdy", "简道云签名", "简道云 signature"),
    ("auth_hmac", "HMAC-SHA256 签名", "HMAC-SHA256 signature"),
    ("redirect_to", "提交后跳转到", "After a form post, go to"),
    (
        "intake_path",
        "来自（表单字段或 JSON 路径）",
        "From (form field or JSON path)",
    ),
    ("intake_default", "固定值", "Fixed value"),
    (
        "intake_values",
        "值映射（每行 原值=新值）",
        "Value map (from=to per line)",
    ),
    ("webhook", "Webhook（自有系统）", "Webhook (your system)"),
    ("wecom", "企业微信群机器人", "WeCom group robot"),
    ("dingtalk", "钉钉机器人", "DingTalk robot"),
    ("feishu", "飞书机器人", "Feishu bot"),
    ("slack", "Slack", "Slack"),
    ("aliyun_sms", "阿里云短信", "Alibaba Cloud SMS"),
    ("tencent_sms", "腾讯云短信", "Tencent Cloud SMS"),
    ("language", "消息语言", "Message language"),
    ("enabled", "启用", "Enabled"),
    ("channel_url", "地址（Webhook）", "Address (webhook)"),
    (
        "secret",
        "密钥 / 加签 / 密码",
        "Secret / signing key / password",
    ),
    (
        "secret_set",
        "已设置（留空不变）",
        "set (leave empty to keep)",
    ),
    (
        "channel_events",
        "发送哪些事件（都不选：全部）",
        "Events to send (none ticked: all)",
    ),
    (
        "channel_teams",
        "只发这些团队的线索（都不选：全部）",
        "Only leads of these teams (none ticked: all)",
    ),
    ("smtp", "邮件服务器（SMTP）", "Mail server (SMTP)"),
    ("smtp_host", "服务器", "Host"),
    ("smtp_port", "端口", "Port"),
    ("smtp_security", "加密", "Security"),
    ("smtp_from", "发件人", "From"),
    ("sms_settings", "短信设置", "SMS settings"),
    ("sms_sign_name", "签名", "Signature"),
    ("sms_template", "模板", "Template"),
    ("sms_region", "地域", "Region"),
    ("max_attempts", "最多重试次数", "Attempts at most"),
    ("per_minute", "每分钟最多", "At most per minute"),
    ("lead.assigned", "新线索分配", "Lead assigned"),
    ("lead.reassigned", "线索改派", "Lead reassigned"),
    ("lead.reclaimed", "线索收回", "Lead reclaimed"),
    ("lead.sla_reminder", "SLA 提醒", "SLA reminder"),
    ("lead.sla_escalated", "SLA 升级", "SLA escalated"),
    ("lead.claimed", "公海领取", "Claimed from the pool"),
    ("lead.returned_to_pool", "退回公海", "Returned to the pool"),
    ("lead.won", "赢单", "Won"),
    ("lead.lost", "输单", "Lost"),
    ("lead.follow_up_due", "跟进到期", "Follow-up due"),
    (
        "lead.recycle_warning",
        "即将回收提醒",
        "About to be recycled",
    ),
    ("channel.test", "测试消息", "Test message"),
    (
        "pool_members",
        "谁可以领取（都不选：所有人）",
        "Who may claim (none ticked: everyone)",
    ),
    ("pool_reps", "另加销售", "Also these reps"),
    ("claims_per_day", "每人每日可领取", "Claims per rep per day"),
    (
        "cooldown",
        "原负责人多久内不能再领",
        "A previous owner may not claim back for",
    ),
    (
        "touch_within",
        "领取后多久未跟进退回",
        "Back to the pool if not worked within",
    ),
    ("protection", "保护期", "Protection"),
    ("protect_initial", "领取后保护", "After a claim"),
    (
        "protect_extend",
        "每次跟进延长到",
        "Each follow-up extends to",
    ),
    ("protect_max", "最长", "At most"),
    ("members", "成员", "Members"),
    (
        "member_weight",
        "团队内权重（留空用销售自己的）",
        "Weight in this team (empty: the rep's own)",
    ),
    ("overflow", "溢出到", "Overflow to"),
    ("hours_policy", "工作时间外", "Outside working hours"),
    ("in_hours", "只分给在班的销售", "only reps on shift"),
    ("any_time", "任何时间都分配", "assign at any time"),
    (
        "away_fallback",
        "无人在班时仍分给团队成员",
        "When nobody is on shift, still assign within the team",
    ),
    ("leave_policy", "销售休假时", "When a rep goes on leave"),
    ("leave_keep", "保留其线索", "they keep their leads"),
    (
        "leave_hand_back",
        "未跟进的线索改派他人",
        "leads not yet worked go to others",
    ),
    (
        "batch_policy",
        "积压线索（等待队列、休假交回）",
        "Backlogs (hold queue, leave hand-back)",
    ),
    (
        "batch_arrival",
        "按到达顺序逐条分配",
        "one at a time, in arrival order",
    ),
    (
        "batch_optimal",
        "整批最优分配（±10% 公平区间）",
        "as one optimised batch (±10% fair shares)",
    ),
    (
        "custom_fields_help",
        "线索和销售可以带的额外字段。声明后，线索接入可以传入（attributes），规则可以按它判断。",
        "Extra fields leads and reps may carry. Once declared, intake accepts them (attributes) and rules can test them.",
    ),
    ("builtin_fields", "内置字段", "Built-in fields"),
    ("field_type", "类型", "Type"),
    ("field_of", "属于", "Field of"),
    ("text", "文本", "Text"),
    ("number", "数字", "Number"),
    ("bool", "是/否", "Yes/no"),
    ("time", "时间", "Time"),
    ("list", "列表", "List"),
    ("a_value", "固定值 →", "a value →"),
    ("round_robin", "轮询", "Round robin"),
    ("weighted_round_robin", "加权轮询", "Weighted round robin"),
    ("least_loaded", "最少负载", "Least loaded"),
    ("longest_idle", "最久未分配", "Longest idle"),
    ("fair_share", "公平份额", "Fair share"),
    ("best_match", "最佳匹配", "Best match"),
    (
        "strategy_kept",
        "（含其他设置，保留）",
        "(with its settings, kept)",
    ),
    (
        "as_document",
        "全部设置（JSON，null 清除字段）",
        "All settings (JSON; null clears a field)",
    ),
    ("inquiry", "客户再次咨询", "Customer asked again"),
    ("dup_short", "查重", "Duplicates"),
    ("dup_title", "查重与撞单", "Duplicates and collisions"),
    (
        "dup_help",
        "同一客户再次进线时按下面的规则处理；标记为疑似重复的线索在这里合并或忽略。",
        "A customer who arrives again is handled by the policy below; leads flagged as possible duplicates are merged or dismissed here.",
    ),
    ("dup_policy", "查重规则", "Duplicate policy"),
    (
        "dup_keys",
        "按以下信息识别同一客户",
        "Recognise a customer by",
    ),
    (
        "dup_on_match",
        "客户已有未关闭线索时",
        "When the customer has an open lead",
    ),
    (
        "dup_attach",
        "并入原线索（客户再次咨询），不新建",
        "Attach to it (customer asked again), no new lead",
    ),
    (
        "dup_route_to_owner",
        "新建线索，优先交给原负责人",
        "New lead, offered to the same owner first",
    ),
    (
        "dup_flag",
        "新建线索，标记疑似重复待处理",
        "New lead, flagged for review",
    ),
    (
        "dup_off",
        "未开启：只按外部 ID 去重",
        "Off: only an identical external id is a duplicate",
    ),
    (
        "dup_window",
        "已关闭线索在此期限内回访仍归原负责人",
        "A closed lead's owner keeps a returning customer for",
    ),
    (
        "dup_restart_sla",
        "并入时重新开始首次响应计时",
        "Restart the first-response clock on attach",
    ),
    (
        "dup_protect",
        "撞单保护：他人跟进中的客户不可改派或领取",
        "Collision protection: a customer another rep holds cannot be reassigned or claimed",
    ),
    ("dup_pairs", "疑似重复", "Possible duplicates"),
    (
        "dup_none",
        "没有待处理的疑似重复线索。",
        "No possible duplicates to review.",
    ),
    ("dup_matched_by", "匹配依据：", "Matched by"),
    ("dup_keep", "原线索（保留）", "Earlier lead (kept)"),
    ("dup_later", "后到线索（并入）", "Later lead (merged in)"),
    (
        "dup_merge_help",
        "勾选要采用后到线索的字段；后到线索关闭并指向原线索，跟进记录一并转入。",
        "Tick the fields to take from the later lead; it is closed, pointing at the earlier one, and its follow-ups move over.",
    ),
    ("dup_merge", "合并", "Merge"),
    ("dup_dismiss", "不是同一客户", "Not the same customer"),
    (
        "dup_override",
        "撞单时仍然改派（需填写原因）",
        "Reassign even if another rep holds the customer (reason required)",
    ),
    (
        "wecom_app",
        "企业微信应用消息（单发）",
        "WeCom app message (to the rep)",
    ),
    (
        "dingtalk_work",
        "钉钉工作通知（单发）",
        "DingTalk work notice (to the rep)",
    ),
    (
        "feishu_app",
        "飞书应用消息（单发）",
        "Feishu app message (to the rep)",
    ),
    (
        "salesforce",
        "Salesforce（回写 CRM）",
        "Salesforce (CRM write-back)",
    ),
    ("hubspot", "HubSpot（回写 CRM）", "HubSpot (CRM write-back)"),
    (
        "fxiaoke",
        "纷享销客（回写 CRM）",
        "纷享销客 (CRM write-back)",
    ),
    (
        "jiandaoyun",
        "简道云（回写数据）",
        "简道云 (record write-back)",
    ),
    (
        "channel.needs_attention",
        "连接需要处理",
        "Connection needs attention",
    ),
    (
        "channel_app",
        "应用与 CRM 连接",
        "Application and CRM connection",
    ),
    (
        "channel_app_id",
        "应用 ID（企业ID / AppKey / App ID / Consumer Key / appId）",
        "App id (corp id / AppKey / App ID / consumer key / appId)",
    ),
    ("channel_agent_id", "AgentId", "AgentId"),
    ("channel_id_type", "飞书用户 ID 类型", "Feishu user id type"),
    (
        "channel_token",
        "第二凭证（纷享销客永久授权码）",
        "Second credential (纷享销客 permanent code)",
    ),
    (
        "channel_crm",
        "CRM 设置（JSON：object、external_id_field、fields…）",
        "CRM settings (JSON: object, external_id_field, fields…)",
    ),
    (
        "needs_attention",
        "需要处理：平台拒绝了凭证，待发送的消息在等待",
        "Needs attention: the platform refused the credentials; deliveries are waiting",
    ),
    ("intake_preset", "平台预设", "Platform preset"),
    ("preset_none", "自定义", "Custom"),
    ("web_form", "网站表单", "Website form"),
    (
        "meta_lead_ads",
        "Meta 线索广告（Facebook / Instagram）",
        "Meta Lead Ads (Facebook / Instagram)",
    ),
    ("google_ads", "Google Ads 线索表单", "Google Ads lead form"),
    (
        "auth_meta",
        "Meta 签名（X-Hub-Signature-256）",
        "Meta signature (X-Hub-Signature-256)",
    ),
    (
        "auth_google",
        "Google 密钥（google_key）",
        "Google key (google_key)",
    ),
    ("verify_token", "验证令牌（Verify Token）", "Verify token"),
    (
        "access_token",
        "主页访问令牌（Page Access Token）",
        "Page access token",
    ),
    ("graph_url", "Graph API 地址", "Graph API address"),
    // A rule set in words (rule summaries and the changes against the active version).
    ("not", "非", "not"),
    ("lead_s", "线索的", "the lead's"),
    ("every_lead", "所有线索", "Every lead"),
    ("existing_owner", "原负责人", "the customer's owner"),
    ("owner_field", "字段指定的负责人", "the rep named by"),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    ("requires_short", "必须满足", "Requirements"),
    ("prefers_short", "优先", "Preferences"),
    ("window_short", "生效时间", "Applies"),
    ("fallback_short", "无人可分配时", "When nobody can take it"),
    ("fb_default_short", "默认去向", "Default steps"),
    ("sla_policy", "SLA 策略", "SLA policy"),
    ("position", "顺序", "Order"),
    ("other", "其他", "Other"),
    ("rule_added", "新增", "Added"),
    ("rule_removed", "删除", "Removed"),
    ("rule_changed", "修改", "Changed"),
    ("change_note", "变更说明", "Change note"),
    ("open_load", "在跟进 / 保有量上限", "Open / holding cap"),
    ("cap_per_day", "每日上限", "Daily cap"),
    ("choose", "请选择", "Choose"),
    ("actor_cli", "命令行", "command line"),
    ("actor_system", "系统", "system"),
    ("published_by", "发布人", "Published by"),
    ("precise", "完整说明", "Full explanation"),
    // Why reps were passed over, as decision sentences name them.
    ("holding_cap", "已达保有量上限", "holding cap reached"),
    ("daily_cap", "已达每日上限", "daily cap reached"),
    ("weekly_cap", "已达每周上限", "weekly cap reached"),
    ("monthly_cap", "已达每月上限", "monthly cap reached"),
    ("outside_hours", "不在班", "off shift"),
    ("requirement", "不满足必须条件", "requirement not met"),
    (
        "excluded",
        "被排除（如原负责人）",
        "excluded (e.g. a previous owner)",
    ),
    // Activity outcomes (codes the API documents; others show as they are).
    ("reached", "已接通", "Reached"),
    ("no_answer", "未接听", "No answer"),
    ("interested", "有意向", "Interested"),
    ("not_interested", "无意向", "Not interested"),
    ("wrong_number", "号码错误", "Wrong number"),
    ("callback", "约定回电", "Call back"),
    (
        "confirm_publish",
        "我确认：发布后新线索立即按这些规则分配",
        "I confirm: new leads are routed by these rules as soon as they are published",
    ),
    ("period", "时间范围", "Period"),
    ("last_days", "近 {n} 天", "Last {n} days"),
    ("team", "团队", "Team"),
    (
        "trend",
        "每日进线与首次响应",
        "Leads in and first response per day",
    ),
    ("export", "导出", "Export"),
    ("definitions", "指标说明", "What each figure means"),
    (
        "leads_in_means",
        "所选时间内新进的线索数（按进线时间）",
        "Leads that came in during the period (by arrival time)",
    ),
    (
        "assigned_means",
        "其中目前有负责人的线索",
        "Of those, leads someone owns now",
    ),
    (
        "held_means",
        "暂时没有可分配的销售、在待分配队列中等待的线索",
        "Leads waiting in the hold queue because nobody could take them yet",
    ),
    (
        "pooled_means",
        "目前在公海中无人负责的线索",
        "Leads in a pool with no owner now",
    ),
    ("col_p50", "首次响应中位数", "First response p50"),
    (
        "col_p50_means",
        "从分配到负责人第一次跟进的时间；一半的线索比它快",
        "Time from assignment to the owner's first follow-up; half the leads were faster",
    ),
    ("col_p90", "首次响应 90 分位", "First response p90"),
    (
        "col_p90_means",
        "90% 的线索在这个时间内得到首次跟进",
        "Nine leads in ten got their first follow-up within this time",
    ),
    (
        "sla_met_means",
        "分配后在 SLA 第一次提醒前得到跟进、未被升级或收回的线索占比",
        "Share of assigned leads answered before the SLA's first reminder, not escalated or reclaimed",
    ),
    (
        "reclaims_means",
        "因超时未跟进而被 SLA 收回并改派的次数",
        "Times the SLA clock took a lead back from an owner who did not answer",
    ),
    ("col_overdue", "当前逾期", "Overdue now"),
    (
        "col_overdue_means",
        "未结束的线索中，约定回访时间已过，或 SLA 已提醒仍未跟进的",
        "Open leads whose promised callback has passed, or that the SLA reminded about and nobody has answered",
    ),
    ("col_untouched", "3 天未跟进", "Untouched 3+ days"),
    (
        "col_untouched_means",
        "未结束的线索中，超过 3 天没有任何跟进记录的",
        "Open leads with no follow-up for more than 3 days",
    ),
    (
        "won_amount_means",
        "所选时间内赢单的数量与金额（按赢单时间，不论何时进线）",
        "Deals won during the period and their amount (by closing time, whenever they came in)",
    ),
    ("col_nps", "NPS", "NPS"),
    (
        "col_nps_means",
        "客户推荐值：推荐者（9–10 分）占比减去贬损者（0–6 分）占比，-100 到 100",
        "Net promoter score: promoters (9–10) minus detractors (0–6), as a share of answers, from -100 to 100",
    ),
    ("col_csat", "满意度", "Satisfaction"),
    (
        "col_csat_means",
        "客户满意度评分（1–5 分）的平均值",
        "Average customer satisfaction score (1–5)",
    ),
    ("col_depth", "跟进深度", "Follow-ups per lead"),
    (
        "col_depth_means",
        "负责的每条线索平均跟进次数（电话、微信、拜访等）",
        "Average follow-ups (calls, WeChat, visits…) per lead handled",
    ),
    ("col_idle", "距上次跟进（天）", "Days since last follow-up"),
    (
        "col_idle_means",
        "未结束的线索距上次跟进（或分配）的平均天数",
        "Average days since each open lead was last followed up (or assigned)",
    ),
    ("rep_figures", "销售数据", "Reps"),
    ("col_leads", "线索", "Leads"),
    (
        "col_leads_means",
        "所选时间内进线、曾分配给该销售的线索（含认领、改派）",
        "Leads of the period this rep was given at some point (routed, claimed, reassigned)",
    ),
    ("col_open", "跟进中", "Open"),
    (
        "col_open_means",
        "目前由该销售负责、尚未结束的线索",
        "Leads this rep owns now that are not closed",
    ),
    (
        "col_owned_means",
        "所选时间内进线、目前由该销售负责的线索",
        "Leads of the period this rep owns now",
    ),
    ("away_mark", "暂停/休假", "away"),
    ("date", "日期", "Date"),
    ("stage", "阶段", "Stage"),
    (
        "stage_means",
        "线索进入该阶段或更后阶段即计入：已联系 = 有过跟进；已确认 = 已确认或已赢单",
        "A lead counts at a stage once it reached it or a later one: contacted = followed up; qualified = qualified or won",
    ),
    ("stage_in", "新进线索", "Leads in"),
    ("stage_contacted", "已联系", "Contacted"),
    ("stage_qualified", "已确认需求", "Qualified"),
    ("step_rate", "阶段转化", "Step conversion"),
    (
        "step_rate_means",
        "到达该阶段的线索占上一阶段的比例",
        "Share of the previous stage that reached this one",
    ),
    ("of_all", "占全部", "Of all"),
    ("funnel", "转化漏斗", "Funnel"),
    ("share", "实际占比", "Share"),
    (
        "share_means",
        "该销售负责的线索占全部已分配线索的比例",
        "This rep's share of the period's assigned leads",
    ),
    ("target_share", "目标占比", "Target share"),
    (
        "target_share_means",
        "按权重计算的应得占比；暂停或休假的销售没有目标",
        "The share their weight entitles them to; reps paused or on leave have none",
    ),
    ("gap", "偏差", "Gap"),
    (
        "gap_means",
        "实际占比减目标占比，按偏差大小排序",
        "Share minus target share, largest gap first",
    ),
    (
        "by_version",
        "各规则版本的效果",
        "What each rule-set version did",
    ),
    ("active_span", "生效时间", "Active"),
    (
        "active_span_means",
        "该版本作为生效规则的时间段；此期间进线的线索由它分配",
        "When this version was the active one; leads that came in then were routed by it",
    ),
    ("per_day", "日均进线", "Per day"),
    ("avg_response", "平均首次响应", "Mean first response"),
    ("win_rate", "赢单率", "Win rate"),
    (
        "win_rate_means",
        "赢单数 ÷ 已结束（赢单 + 输单）的线索数",
        "Won ÷ closed (won + lost)",
    ),
    ("now", "现在", "now"),
    ("scorecard", "个人数据", "Scorecard"),
    ("col_last_touch", "最近跟进", "Last follow-up"),
    ("closed", "结束时间", "Closed"),
    ("handled_by", "曾分配给", "Handled by"),
    ("sla_missed", "SLA 超时", "SLA missed"),
    ("idle_days", "超过 {n} 天未跟进", "Untouched for {n}+ days"),
    ("total_count", "共 {n} 条", "{n} in all"),
    ("sla_state", "SLA 状态", "SLA state"),
    ("clear_filters", "清除筛选", "Clear filters"),
    ("columns", "显示列", "Columns"),
    (
        "select_all_matching",
        "选中筛选出的全部 {n} 条",
        "Select all {n} matching",
    ),
    ("tick_page", "选中本页", "Tick this page"),
    ("previous", "上一页", "Previous"),
    ("by_day", "按日明细", "Day by day"),
    ("kind_user", "账号", "account"),
    ("kind_key", "API 密钥", "API key"),
    ("kind_rule_set", "分配规则", "rule set"),
    ("kind_model", "评分模型", "scoring model"),
    ("kind_model_schedule", "模型训练计划", "training schedule"),
    ("kind_setting", "设置", "setting"),
    ("kind_settings", "设置", "settings"),
    ("kind_channel", "通知渠道", "channel"),
    ("kind_calendar", "工作日历", "calendar"),
    ("kind_intake_source", "进线来源", "intake source"),
    ("kind_sla_policy", "SLA 策略", "SLA policy"),
    ("kind_pool", "公海", "pool"),
    ("kind_team", "团队", "team"),
    ("kind_rep", "销售", "rep"),
    ("kind_lead", "线索", "lead"),
    ("kind_field", "自定义字段", "custom field"),
    ("kind_duplicate", "查重", "duplicates"),
    ("kind_duplicate_pair", "疑似重复", "possible duplicate"),
    ("verb_created", "新建", "created"),
    ("verb_changed", "修改", "changed"),
    ("verb_deleted", "删除", "deleted"),
    ("verb_published", "发布", "published"),
    ("verb_rolled_back", "回滚", "rolled back"),
    ("verb_password_reset", "重置密码", "password reset"),
    ("verb_password_changed", "修改密码", "password changed"),
    ("verb_revoked", "吊销", "revoked"),
    ("verb_status_changed", "修改状态", "status changed"),
    ("verb_dismissed", "忽略", "dismissed"),
    ("verb_merged", "合并", "merged"),
    ("verb_assigned", "分配", "assigned"),
    ("verb_schedule_set", "设置计划", "schedule set"),
    (
        "verb_duplicates_set",
        "修改查重策略",
        "duplicate policy set",
    ),
    ("display_name", "显示名", "Display name"),
    ("role_rep", "销售", "Rep"),
    ("role_manager", "销售经理", "Manager"),
    ("role_admin", "管理员", "Admin"),
    ("role_reporting", "只读报表", "Reporting"),
    ("role_integration", "系统集成", "Integration"),
    ("none", "无", "None"),
    ("key_prefix", "密钥前缀", "Key prefix"),
    ("deactivated", "已停用", "Deactivated"),
    ("detail_role", "角色", "role"),
    ("detail_rep_id", "销售", "rep"),
    ("detail_previous", "原版本", "previous"),
    ("detail_version", "新版本", "version"),
    ("detail_because", "原因", "because"),
    ("detail_teams", "团队", "teams"),
    ("pool_why_released", "负责人释放", "released by the owner"),
    (
        "pool_why_sla_pool",
        "未及时首次跟进，超时收回",
        "no first response in time",
    ),
    (
        "pool_why_hop_limit",
        "多次转派仍无人跟进",
        "reassigned too often without a response",
    ),
    (
        "pool_why_no_follow_up",
        "长期未跟进，自动回收",
        "no follow-up for too long",
    ),
    (
        "pool_why_not_touched",
        "领取后未及时跟进",
        "claimed but not followed up in time",
    ),
    (
        "pool_why_protection_ended",
        "保护期已到",
        "the protection period ended",
    ),
    (
        "pool_why_route",
        "按规则进入公海（无可分配的销售）",
        "routed to the pool (nobody could take it)",
    ),
    ("in_pool_since", "进入公海于", "in the pool since"),
    ("copy_wechat", "复制微信", "Copy WeChat"),
    ("copied", "已复制", "Copied"),
    ("team.digest", "团队日报 / 周报", "Team digest"),
    (
        "digest_daily",
        "📊 {team} · 日报 {date}",
        "📊 {team} · daily digest {date}",
    ),
    (
        "digest_weekly",
        "📊 {team} · 周报（截至 {date}）",
        "📊 {team} · weekly digest (to {date})",
    ),
    (
        "digest_totals",
        "新进线索 {in} · 已分配 {assigned} · 首次响应中位数 {p50} · SLA 达成率 {sla}",
        "Leads in {in} · assigned {assigned} · first response p50 {p50} · SLA met {sla}",
    ),
    (
        "digest_won",
        "赢单 {won} · {amount}",
        "Won {won} · {amount}",
    ),
    ("digest_board", "🏆 赢单榜：", "🏆 Leaderboard: "),
    (
        "digest_winner",
        "{place}. {name} {won} 单 {amount}",
        "{place}. {name} {won} won {amount}",
    ),
    ("digest_no_wins", "🏆 本期暂无赢单", "🏆 No deals won yet"),
    (
        "digest_quickest",
        "⚡ 响应最快：",
        "⚡ Quickest to respond: ",
    ),
    ("digest_overdue", "⚠️ 当前逾期：", "⚠️ Overdue now: "),
    (
        "digest_none_overdue",
        "✅ 当前没有逾期线索",
        "✅ Nothing overdue",
    ),
    ("digest", "团队日报 / 周报", "Team digest"),
    ("digest_every", "发送频率", "Every"),
    ("digest_off", "不发送", "Off"),
    ("digest_day", "每天", "Day"),
    ("digest_week", "每周", "Week"),
    ("digest_at", "发送时间", "At"),
    ("digest_weekday", "星期", "Weekday"),
    (
        "digest_means",
        "按时把团队的进线、首次响应、SLA、赢单榜和逾期线索发到这个群（所选团队各一份；未选团队时每个团队一份）",
        "Sends each team's leads in, first response, SLA, leaderboard and overdue leads to this chat on schedule (one per ticked team; every team when none is ticked)",
    ),
    ("tier_from", "得分达到", "Score from"),
    ("author", "作者", "Author"),
];

/// Names of lead and rep fields and of condition operators, for the condition builder's
/// choices: `(name, Chinese, English)`. A name not listed (a custom attribute) shows as it is.
const LABELS: &[(&str, &str, &str)] = &[
    ("name", "姓名", "Name"),
    ("phone", "电话", "Phone"),
    ("email", "邮箱", "Email"),
    ("wechat", "微信", "WeChat"),
    ("company", "公司", "Company"),
    ("title", "职位", "Title"),
    ("country", "国家", "Country"),
    ("province", "省份", "Province"),
    ("city", "城市", "City"),
    ("region", "区域", "Region"),
    ("industry", "行业", "Industry"),
    ("company_size", "公司规模（人）", "Company size"),
    ("source", "来源", "Source"),
    ("campaign", "活动", "Campaign"),
    ("product", "产品", "Product"),
    ("demand", "需求", "Demand"),
    ("budget", "预算", "Budget"),
    ("urgency", "紧急程度", "Urgency"),
    ("tags", "标签", "Tags"),
    ("score", "评分", "Score"),
    ("priority", "优先级", "Priority"),
    ("status", "状态", "Status"),
    ("owner", "负责人", "Owner"),
    ("known_owner", "老客户负责人", "Known customer's owner"),
    ("created_at", "创建时间", "Created"),
    ("rep.id", "销售 ID", "Rep id"),
    ("rep.regions", "销售负责区域", "Rep's regions"),
    ("rep.industries", "销售负责行业", "Rep's industries"),
    ("rep.products", "销售负责产品", "Rep's products"),
    ("rep.languages", "销售语言", "Rep's languages"),
    ("rep.teams", "销售所在团队", "Rep's teams"),
    ("rep.level", "销售级别", "Rep's level"),
    ("rep.weight", "销售权重", "Rep's weight"),
    ("equals", "等于", "equals"),
    ("not_equals", "不等于", "does not equal"),
    ("in", "属于其一", "is one of"),
    ("not_in", "不属于", "is none of"),
    ("contains", "包含", "contains"),
    ("not_contains", "不包含", "does not contain"),
    ("contains_any", "包含任一", "contains any of"),
    ("starts_with", "开头是", "starts with"),
    ("ends_with", "结尾是", "ends with"),
    ("matches", "匹配正则", "matches (regex)"),
    ("gt", "大于", "greater than"),
    ("gte", "大于等于", "at least"),
    ("lt", "小于", "less than"),
    ("lte", "小于等于", "at most"),
    ("between", "介于", "between"),
    ("exists", "有值", "has a value"),
    ("missing", "为空", "is empty"),
];

/// Lead statuses and decision kinds as the console shows them: `(name, Chinese, English)`.
const STATES: &[(&str, &str, &str)] = &[
    ("new", "新线索", "new"),
    ("assigned", "已分配", "assigned"),
    ("contacted", "已联系", "contacted"),
    ("qualified", "有意向", "qualified"),
    ("won", "赢单", "won"),
    ("lost", "输单", "lost"),
    ("invalid", "无效", "invalid"),
    ("route", "自动分配", "routed"),
    ("reroute", "重新分配", "rerouted"),
    ("release", "等待后分配", "released from the hold queue"),
    ("manual", "手动改派", "assigned by hand"),
    ("hand_back", "休假交回", "handed back (leave)"),
    ("claim", "公海领取", "claimed from the pool"),
    ("merge", "合并线索", "merged"),
    ("pool", "从公海分配", "assigned from the pool"),
    ("reclaim", "超时收回改派", "reclaimed (SLA)"),
    ("draft", "草稿", "draft"),
    ("retired", "已停用（可回滚）", "retired"),
    ("admin", "管理员", "admin"),
    ("manager", "销售经理", "manager"),
    ("rep", "销售", "rep"),
    ("reporting", "只读报表", "reporting"),
    ("integration", "系统集成", "integration"),
    ("low", "低", "low"),
    ("normal", "普通", "normal"),
    ("high", "高", "high"),
    ("urgent", "紧急", "urgent"),
];

/// What an API error code means, for the notice a form shows after it failed: `(code, Chinese,
/// English)`. A code not listed here is shown as it is.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "nothing_ticked",
        "请先勾选线索，或选中筛选出的全部线索",
        "Tick some leads first, or select all that match",
    ),
    (
        "customer_held",
        "该客户正由其他销售跟进（撞单），不能改派或领取；经理可填写原因后强制改派",
        "Another rep holds this customer; a manager may override with a reason",
    ),
    (
        "reason_required",
        "强制改派需要填写原因",
        "Overriding a collision needs a reason",
    ),
    (
        "already_merged",
        "其中一条线索已被合并",
        "One of the leads was merged already",
    ),
    (
        "pair_resolved",
        "这对线索已处理过",
        "This pair was resolved already",
    ),
    (
        "account_locked",
        "登录失败次数过多，账号暂时锁定",
        "Too many failed sign-ins; the account is locked for a while",
    ),
    (
        "already_exists",
        "已存在同 ID 的记录",
        "Something with that id already exists",
    ),
    (
        "already_owner",
        "该销售已经是负责人",
        "That rep already owns the lead",
    ),
    ("body_too_large", "内容太大", "The submission is too large"),
    (
        "busy",
        "记录正被他人同时修改，请重试",
        "Someone else is changing this at the same moment; try again",
    ),
    (
        "channel_failed",
        "通道没有接受测试消息",
        "The channel did not accept the test message",
    ),
    (
        "claim_cooldown",
        "你最近负责过这条线索，冷却期内不能再领取",
        "You owned this lead recently; it cannot be claimed back yet",
    ),
    ("claim_limit", "今日领取次数已用完", "No claims left today"),
    (
        "confirm_needed",
        "请先勾选确认",
        "Tick the confirmation first",
    ),
    (
        "control_character",
        "含有不允许的控制字符",
        "It contains a control character",
    ),
    (
        "csrf_failed",
        "页面已过期，请刷新后重试",
        "The page expired; reload it and try again",
    ),
    ("forbidden", "没有权限", "Not allowed for your role"),
    ("holding_cap", "已达保有量上限", "Holding cap reached"),
    (
        "illegal_transition",
        "不允许的状态变更",
        "That status change is not allowed",
    ),
    (
        "immutable_field",
        "该字段不能修改",
        "That field cannot be changed",
    ),
    (
        "in_use",
        "仍在使用中，不能删除",
        "Still in use; it cannot be deleted",
    ),
    (
        "invalid_characters",
        "地址中有无法识别的字符",
        "The address holds characters that are not text",
    ),
    (
        "invalid_email",
        "邮箱格式不正确",
        "Not a valid email address",
    ),
    ("invalid_json", "JSON 格式不正确", "Not valid JSON"),
    (
        "invalid_phone",
        "电话号码格式不正确",
        "Not a valid phone number",
    ),
    ("invalid_rule_set", "规则有错误", "The rules have errors"),
    ("invalid_value", "取值不正确", "A value is not acceptable"),
    ("lead_closed", "线索已关闭", "The lead is closed"),
    ("malformed_json", "JSON 格式不正确", "Not valid JSON"),
    ("missing_field", "缺少必填项", "A required field is missing"),
    ("not_found", "没有找到", "Not found"),
    (
        "no_room",
        "团队里没有销售在上限和公平区间内还有余量，线索留在公海",
        "No rep of the team has room within caps and the band; the lead stays in the pool",
    ),
    (
        "not_in_pool",
        "线索已不在公海（可能已被领取）",
        "The lead is no longer in the pool (perhaps claimed)",
    ),
    (
        "not_owned",
        "这条线索不归你负责",
        "You do not own this lead",
    ),
    (
        "not_pool_member",
        "你不是这个公海的成员",
        "You are not a member of this pool",
    ),
    (
        "rate_limited",
        "请求太频繁，请稍后再试",
        "Too many requests; try again shortly",
    ),
    (
        "rep_in_use",
        "该销售仍有线索或被引用",
        "The rep still has leads or is referenced",
    ),
    (
        "rep_unavailable",
        "该销售当前不可接单",
        "The rep is not available",
    ),
    (
        "team_in_use",
        "该团队仍被引用",
        "The team is still referenced",
    ),
    ("too_long", "内容太长", "Too long"),
    (
        "too_many_rules",
        "规则太多（最多 1000 条）",
        "Too many rules (at most 1,000)",
    ),
    ("unknown_calendar", "没有这个工作日历", "No such calendar"),
    (
        "unknown_field",
        "有不认识的字段",
        "There is an unknown field",
    ),
    ("unknown_pool", "没有这个公海", "No such pool"),
    ("unknown_rep", "没有这个销售", "No such rep"),
    ("unknown_team", "没有这个团队", "No such team"),
    // Rule-set checks, shown at the row or rule they concern.
    (
        "target_missing",
        "请选择分配给哪个团队或公海",
        "Choose a team or pool to assign to",
    ),
    (
        "invalid_condition",
        "条件不完整",
        "The condition is incomplete",
    ),
    (
        "operator_not_for_type",
        "这个运算符不适用于该字段",
        "That operator does not apply to this field",
    ),
    (
        "invalid_regex",
        "正则表达式有误",
        "The pattern is not a valid regex",
    ),
    ("unknown_operator", "未知的运算符", "Unknown operator"),
    ("duplicate_id", "规则 ID 重复", "Two rules share an id"),
    (
        "rep_field_not_allowed",
        "销售字段只能用在“必须满足”和“优先”里",
        "Rep fields belong in requirements and preferences",
    ),
    (
        "not_enough_outcomes",
        "已关闭的线索不够：至少需要 200 条，成交、输单各 40 条",
        "Not enough closed leads: training needs 200, with 40 won and 40 lost",
    ),
    (
        "not_publishable",
        "用文件训练的模型只能试用，不能发布",
        "A model trained on a file is for trying out and cannot be published",
    ),
    (
        "model_training",
        "模型还在训练",
        "The model is still training",
    ),
    (
        "model_failed",
        "训练失败的模型不能发布",
        "A model whose training failed cannot be published",
    ),
    (
        "empty_window",
        "这段时间没有线索",
        "No leads arrived in that window",
    ),
    (
        "unknown_rule_set",
        "没有这个规则版本",
        "No such rule-set version",
    ),
    (
        "no_active_rule_set",
        "还没有发布任何规则",
        "No rule set is published yet",
    ),
    (
        "finished",
        "回放已经结束",
        "The simulation has already ended",
    ),
    (
        "version_mismatch",
        "此记录已被他人修改，请刷新后再保存",
        "Someone changed this since you opened it; reload and save again",
    ),
    (
        "weak_password",
        "密码太短（至少 10 位）",
        "The password is too short (at least 10 characters)",
    ),
];

/// Looks words up in the page's language.
#[derive(Clone, Copy, Debug)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn t(&self, key: &str) -> &'static str {
        WORDS
            .iter()
            .find(|(name, _, _)| *name == key)
            .map_or("?", |(_, zh, en)| match self.lang {
                Lang::Zh => zh,
                Lang::En => en,
            })
    }

    /// A code of a known list (an event, an activity outcome) in the page's language; a code
    /// the catalogue does not know (a team's own outcome) as it is.
    pub fn word<'a>(&self, code: &'a str) -> &'a str {
        match self.t(code) {
            "?" => code,
            word => word,
        }
    }

    /// The name of a field or operator in the page's language; custom names as they are.
    pub fn label<'a>(&self, name: &'a str) -> &'a str {
        LABELS
            .iter()
            .find(|(key, _, _)| *key == name)
            .map_or(name, |(_, zh, en)| match self.lang {
                Lang::Zh => zh,
                Lang::En => en,
            })
    }

    /// A lead status or a decision kind in the page's language; unknown ones as they are.
    pub fn state<'a>(&self, name: &'a str) -> &'a str {
        STATES
            .iter()
            .find(|(key, _, _)| *key == name)
            .map_or(name, |(_, zh, en)| match self.lang {
                Lang::Zh => zh,
                Lang::En => en,
            })
    }

    /// The sentence for an API error code, or `None` for a code without one.
    pub fn error(&self, code: &str) -> Option<&'static str> {
        ERRORS
            .iter()
            .find(|(name, _, _)| *name == code)
            .map(|(_, zh, en)| match self.lang {
                Lang::Zh => *zh,
                Lang::En => *en,
            })
    }

    pub fn lang(&self) -> &'static str {
        self.lang.code()
    }

    pub fn other_code(&self) -> &'static str {
        self.lang.other().0
    }

    pub fn other_name(&self) -> &'static str {
        self.lang.other().1
    }

    pub fn is_zh(&self) -> bool {
        self.lang == Lang::Zh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_has_both_languages_and_keys_are_unique() {
        let mut keys: Vec<&str> = WORDS.iter().map(|(key, _, _)| *key).collect();
        keys.sort_unstable();
        let count = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), count, "a key appears twice");
        let mut codes: Vec<&str> = ERRORS.iter().map(|(code, _, _)| *code).collect();
        codes.sort_unstable();
        let count = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), count, "an error code appears twice");
        assert!(
            WORDS
                .iter()
                .all(|(_, zh, en)| !zh.is_empty() && !en.is_empty())
        );
    }

    /// Every key a template or the console's code asks for by name is in the catalogue (a
    /// missing one would show as "?").
    #[test]
    fn every_key_the_console_asks_for_is_in_the_catalogue() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        for dir in ["templates", "src/console"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("dir") {
                let path = entry.expect("entry").path();
                if path.ends_with("i18n.rs") {
                    continue;
                }
                sources.push((path.clone(), std::fs::read_to_string(&path).expect("read")));
            }
        }
        let mut missing = Vec::new();
        for (path, text) in &sources {
            // `t.t("key")`, `frame.t.t("key")`, `viewer.t.t("key")`: a literal key.
            for piece in text.split(".t(\"").skip(1) {
                let Some(key) = piece.split('"').next() else {
                    continue;
                };
                let literal = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if literal && !WORDS.iter().any(|(name, _, _)| *name == key) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "keys missing from the catalogue: {missing:#?}"
        );
    }

    #[test]
    fn the_browser_chooses_unless_the_cookie_did() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "accept-language",
            axum::http::HeaderValue::from_static("en-US,en;q=0.9,zh;q=0.8"),
        );
        assert_eq!(Lang::from_headers(&headers), Lang::En);
        headers.insert("cookie", axum::http::HeaderValue::from_static("lang=zh"));
        assert_eq!(Lang::from_headers(&headers), Lang::Zh);
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::Zh);
    }
}
