-- -*- mode: sql; sql-product: postgres; -*-
-- Copyright ⓒ 2024-2025 Peter Morgan <peter.james.morgan@gmail.com>
--
-- Licensed under the Apache License, Version 2.0 (the "License");
-- you may not use this file except in compliance with the License.
-- You may obtain a copy of the License at
--
-- http://www.apache.org/licenses/LICENSE-2.0
--
-- Unless required by applicable law or agreed to in writing, software
-- distributed under the License is distributed on an "AS IS" BASIS,
-- WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
-- See the License for the specific language governing permissions and
-- limitations under the License.

-- prepare record_fetch (text, text, integer, integer, integer, integer) as
--
-- loyalty-swarm patch: the running byte total is taken over at most 4096 records from
-- the fetch offset. In 0.6.0 it ran over every record up to the high watermark, so each
-- fetch read the rest of the partition and reading a topic from the start cost time
-- quadratic in its length. A fetch may return less than max_bytes; the client fetches
-- again from where it stopped.
with bounded as (
select

r.offset_id,
r.attributes,
r.timestamp,
r.k,
r.v,
r.producer_id,
r.producer_epoch,
-- loyalty-swarm patch: for header_fetch_by_record.sql.
r.topition

from

cluster c
join topic t on t.cluster = c.id
join topition tp on tp.topic = t.id
join record r on r.topition = tp.id

where

c.name = $1
and t.name = $2
and tp.partition = $3
and r.offset_id >= $4
and r.offset_id < $6

order by r.offset_id
limit 4096),

sized as (
select

offset_id,
attributes,
timestamp,
k,
v,
sum(coalesce(length(k), 0) + coalesce(length(v), 0)) over (order by offset_id) as bytes,
producer_id,
producer_epoch,
topition

from bounded)

select * from sized where bytes < $5;
