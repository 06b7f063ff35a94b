-- -*- mode: sql; sql-product: postgres; -*-
-- Added by loyalty-swarm to tansu-storage 0.6.0 (Apache-2.0); see vendor/README.md.

-- loyalty-swarm patch: headers are read by record (topition, offset_id); without an
-- index every read, and every cascade from a deleted record, scanned the whole table.
create index if not exists header_record on header (topition, offset_id);
