-- Nothing looks leads up by their phone or email column: owners by contact come from
-- `contacts`, the duplicate policy's keys from `customer_keys`, and search reads the document.
-- Both indexes cost every new lead an insert at a random place in a B-tree (a page written
-- to the WAL per lead and index).
DROP INDEX IF EXISTS leads_phone;
DROP INDEX IF EXISTS leads_email;
