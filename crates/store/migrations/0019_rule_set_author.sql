-- Who saved each rule-set version (`user:<id>`, `key:<id>`, `cli`): the versions page names
-- a draft's author beside whoever published it.
ALTER TABLE rule_sets ADD COLUMN created_by TEXT;
