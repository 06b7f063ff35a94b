#!/usr/bin/env python3
"""Compare the peers' final member-state with customer-graph's, member by member.

Reads each topic whole (read_committed), decodes the Confluent wire format through the
registry, keeps the newest value per member, and counts per field how many members match
customer-graph's `loyalty.member-state.v1`. With --file it also checks customer-graph's
buy-till-you-die summary against one computed straight from the CDNOW file (the same
computation as tests/tests/e2e/common/mod.rs `independent_btyd`).

    python3 compare.py --bootstrap-servers 127.0.0.1:29092 \\
        --schema-registry-url http://127.0.0.1:28081 \\
        --file ../../data/cdnow/CDNOW_sample.txt \\
        bench.kafka-streams.member-state bench.quixstreams.member-state

Needs confluent-kafka and fastavro (both in quixstreams/requirements.txt).
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import sys
import urllib.request
import uuid
from collections import defaultdict

import fastavro
from confluent_kafka import Consumer, TopicPartition

REFERENCE = "loyalty.member-state.v1"


def strip_logical(schema):
    if isinstance(schema, dict):
        return {k: strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical(s) for s in schema]
    return schema


class Registry:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.cache = {}

    def schema(self, schema_id: int):
        if schema_id not in self.cache:
            with urllib.request.urlopen(f"{self.url}/schemas/ids/{schema_id}", timeout=30) as r:
                text = json.loads(r.read())["schema"]
            self.cache[schema_id] = fastavro.parse_schema(strip_logical(json.loads(text)))
        return self.cache[schema_id]


def read_topic(bootstrap: str, registry: Registry, topic: str):
    """(newest value per key, number of records) of `topic`, read to its end."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"compare-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    md = c.list_topics(topic, timeout=10)
    partitions = list(md.topics[topic].partitions)
    ends = {}
    for p in partitions:
        low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    latest, records = {}, 0
    while ends:
        msg = c.poll(2.0)
        if msg is None:
            # Quiet: a partition is done once its position reached the end (with
            # read_committed the last offsets may be transaction markers, never delivered).
            for p in list(ends):
                pos = c.position([TopicPartition(topic, p)])[0].offset
                if pos >= ends[p]:
                    ends.pop(p)
            continue
        if msg.error():
            continue
        key = msg.key().decode()
        v = msg.value()
        if v is None:
            latest.pop(key, None)
        else:
            body = io.BytesIO(v)
            body.seek(5)
            latest[key] = fastavro.schemaless_reader(body, registry.schema(int.from_bytes(v[1:5], "big")), None)
        records += 1
        if msg.offset() >= ends.get(msg.partition(), 0) - 1:
            ends.pop(msg.partition(), None)
    c.close()
    return latest, records


def independent_btyd(path: str):
    """tests/tests/e2e/common/mod.rs `independent_btyd`: (x, t_x, first day, mean repeat)."""
    per_day = defaultdict(lambda: defaultdict(float))
    for line in open(path):
        f = line.split()
        if not f or "customer_id" in line:
            continue
        c, d, v = (f[0], f[1], f[3]) if len(f) == 4 else (f[0], f[2], f[4])
        day = datetime.date(int(d[:4]), int(d[4:6]), int(d[6:8])).toordinal() - datetime.date(1970, 1, 1).toordinal()
        per_day[c][day] += float(v) * 100.0
    out = {}
    for c, days in per_day.items():
        keys = sorted(days)
        x = len(keys) - 1
        repeat = sum(days[k] for k in keys[1:])
        out[c] = (x, keys[-1] - keys[0], keys[0], repeat / x if x > 0 else 0.0)
    return out


FIELDS = {
    "spend_minor": lambda s: s["spend_minor"],
    "btyd.x (repeat transactions)": lambda s: s["btyd"] and s["btyd"]["x"],
    "rfm.frequency (x + 1)": lambda s: s["rfm"] and s["rfm"]["frequency"],
    "btyd.t_x_days (BTYD recency)": lambda s: s["btyd"] and s["btyd"]["t_x_days"],
    "rfm.recency_days (as_of - last)": lambda s: s["rfm"] and s["rfm"]["recency_days"],
    "btyd.t_days (T)": lambda s: s["btyd"] and s["btyd"]["t_days"],
    "btyd.first/last_purchase": lambda s: s["btyd"] and (s["btyd"]["first_purchase"], s["btyd"]["last_purchase"]),
    "btyd.mean_repeat_value_minor": lambda s: s["btyd"] and s["btyd"]["mean_repeat_value_minor"],
    "rfm.monetary_minor": lambda s: s["rfm"] and s["rfm"]["monetary_minor"],
    "points.earned": lambda s: s["points"]["earned"],
    "points.balance": lambda s: s["points"]["balance"],
    "points.earn_velocity_30d": lambda s: s["points"]["earn_velocity_30d"],
    "as_of": lambda s: s["as_of"],
    "events_applied": lambda s: s["events_applied"],
    "tier.tier_id": lambda s: s["tier"] and s["tier"]["tier_id"],
    "tier.qualifying_amount": lambda s: s["tier"] and s["tier"]["qualifying_amount"],
    "tier.tier_since": lambda s: s["tier"] and s["tier"]["tier_since"],
    "tier.grace_until": lambda s: s["tier"] and s["tier"]["grace_until"],
    "tier.window_end": lambda s: s["tier"] and s["tier"]["window_end"],
    "tier.qualifying_days": lambda s: s["tier"] and s["tier"]["qualifying_days"],
    "streaks (current, longest)": lambda s: (s["current_streak_months"], s["longest_streak_months"]),
    "identity_links": lambda s: s["identity_links"],
    "brands": lambda s: s["brands"],
    "currency": lambda s: s["currency"],
    "whole record": lambda s: s,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    ap.add_argument("--schema-registry-url", default="http://127.0.0.1:8081")
    ap.add_argument("--file", help="the CDNOW file replayed, for the independent BTYD check")
    ap.add_argument("--reference", default=REFERENCE)
    ap.add_argument("--show", type=int, default=3, help="mismatching members to print per field")
    ap.add_argument("topics", nargs="+")
    args = ap.parse_args()
    registry = Registry(args.schema_registry_url)
    ref, ref_records = read_topic(args.bootstrap_servers, registry, args.reference)
    print(f"{args.reference}: {len(ref)} members, {ref_records} records")
    failed = False
    if args.file:
        ind = independent_btyd(args.file)
        bad = [
            m
            for m, (x, tx, first, mean) in ind.items()
            if m not in ref
            or not ref[m]["btyd"]
            or (ref[m]["btyd"]["x"], ref[m]["btyd"]["t_x_days"], ref[m]["btyd"]["first_purchase"]) != (x, tx, first)
            or abs(ref[m]["btyd"]["mean_repeat_value_minor"] - mean) > 0.5
        ]
        print(f"  vs the CDNOW file: {len(ind) - len(bad)} of {len(ind)} members match (x, t_x, first, mean repeat value)")
        failed |= bool(bad) or len(ind) != len(ref)
    for topic in args.topics:
        got, records = read_topic(args.bootstrap_servers, registry, topic)
        print(f"{topic}: {len(got)} members, {records} records")
        only_ref = sorted(set(ref) - set(got))
        only_got = sorted(set(got) - set(ref))
        if only_ref or only_got:
            print(f"  members only in {args.reference}: {len(only_ref)}, only here: {len(only_got)}")
            failed = True
        common = sorted(set(ref) & set(got))
        for name, field in FIELDS.items():
            mismatched = [m for m in common if field(ref[m]) != field(got[m])]
            print(f"  {name:36} {len(common) - len(mismatched):6} match {len(mismatched):6} differ")
            for m in mismatched[: args.show]:
                print(f"      {m}: customer-graph {field(ref[m])!r:.300}\n      {' ' * len(m)}  peer           {field(got[m])!r:.300}")
            failed |= bool(mismatched)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
