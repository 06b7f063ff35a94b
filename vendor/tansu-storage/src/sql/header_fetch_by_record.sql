-- -*- mode: sql; sql-product: postgres; -*-
-- Added by loyalty-swarm to tansu-storage 0.6.0 (Apache-2.0); see vendor/README.md.

-- loyalty-swarm patch: one record's headers by its topition id (record_fetch.sql returns
-- it) through the header_record index, instead of header_fetch.sql's four-table join.

select k, v
from header
where topition = $1
and offset_id = $2
order by rowid;
