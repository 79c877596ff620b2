-- The audit rows about one kind of object (who published each rule-set version), found
-- without reading the whole log.
CREATE INDEX audit_target ON audit_log (target_kind, action);
