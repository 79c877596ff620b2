-- Retraining the conversion model on a schedule: one row, the setting and where it stands.
CREATE TABLE model_schedule (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- JSON: {"every": "7d", "auto_publish": false, "minimum_auc": 0.75, "time_zone": …}
    document TEXT NOT NULL,
    -- When the next scheduled training is due; NULL: only on demand. An instance claims a run
    -- by moving it forward from the value it read, so one instance trains per due time.
    next_at BIGINT,
    last_at BIGINT,
    -- JSON: {"version": 7, "published": true} or {"error": {"code", "message"}}
    last_result TEXT,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);
INSERT INTO model_schedule (id, document, updated_at) VALUES (1, '{}', 0);
