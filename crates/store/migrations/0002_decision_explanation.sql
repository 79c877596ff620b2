-- The explanation of each decision in Chinese and English, written with the decision so that
-- reading it back needs no re-rendering.
ALTER TABLE decisions ADD COLUMN explanation TEXT NOT NULL DEFAULT '{}';
