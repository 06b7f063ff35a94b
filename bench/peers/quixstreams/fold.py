#!/usr/bin/env python3
"""quixstreams peer of loyalty-swarm's customer-graph agent (bench/peers/README.md).

The same fold of the CDNOW replay's member events and profiles into one member-state
snapshot per input record, as a quixstreams Application: RocksDB state with its
changelog topic, exactly-once or at-least-once, output to `bench.quixstreams.member-state`
(the contract's member-state Avro schema, Confluent wire format).

    loyalty.member-events.v1 -- decode, check -+- key == member_id -----------------------+
                                               +- key != member_id -- group_by(member_id) -+ concat
    loyalty.member-profiles.v1 -- decode, check ------------------------------------------+
    loyalty.programs.v1 == read whole before start, then followed (a background consumer)
                                      fold (stateful apply: RocksDB + changelog) --> output

The fold is a port of agents/customer-graph/src/fold/mod.rs (`MemberFold`) for what the
CDNOW replay writes (OrderPlaced, PointsEarned, profiles); each function names the Rust
one it ports. Run `python fold.py --help` for the flags.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import io
import json
import logging
import os
import threading
import time
import urllib.request
import uuid
from typing import Any, Optional

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from quixstreams import Application, State
from quixstreams.models.serializers import Deserializer

log = logging.getLogger("fold")

MEMBER_EVENTS = "loyalty.member-events.v1"
MEMBER_PROFILES = "loyalty.member-profiles.v1"
PROGRAMS = "loyalty.programs.v1"
SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "schemas")

MILLIS_PER_DAY = 86_400_000
# customer-graph's defaults (agents/customer-graph/src/lib.rs `Settings`, runtime config).
DEDUPE_WINDOW = 16
RETENTION_DAYS = 400
MAX_LINKS = 16
MAX_ID_BYTES = 256
MAX_EVENT_TIME_AHEAD_MS = 3_600_000
EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()

counts = {"emitted": 0, "duplicates": 0, "rejected": 0, "unsupported": 0}


# ---- registry and wire format ------------------------------------------------------


def strip_logical(schema: Any) -> Any:
    """The schema without logical types, so fastavro reads and writes plain ints and longs
    (days and milliseconds), as the contract's Rust types hold them."""
    if isinstance(schema, dict):
        return {k: strip_logical(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical(s) for s in schema]
    return schema


class Registry:
    """Writer schemas by id (GET /schemas/ids/{id}, cached per id) and registration."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.by_id: dict[int, Any] = {}
        self.lock = threading.Lock()

    def schema(self, schema_id: int) -> Any:
        parsed = self.by_id.get(schema_id)
        if parsed is None:
            with urllib.request.urlopen(f"{self.url}/schemas/ids/{schema_id}", timeout=30) as r:
                text = json.loads(r.read())["schema"]
            parsed = fastavro.parse_schema(strip_logical(json.loads(text)))
            with self.lock:
                self.by_id[schema_id] = parsed
        return parsed

    def register(self, subject: str, schema_text: str) -> int:
        request = urllib.request.Request(
            f"{self.url}/subjects/{subject}/versions",
            data=json.dumps({"schema": schema_text}).encode(),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            return int(json.loads(r.read())["id"])


class Undecodable(Exception):
    pass


def decode_wire(registry: Registry, value: bytes) -> dict:
    """Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body."""
    if value is None or len(value) < 5 or value[0] != 0:
        raise Undecodable("not Confluent wire format")
    schema_id = int.from_bytes(value[1:5], "big")
    try:
        schema = registry.schema(schema_id)
    except Exception as e:  # noqa: BLE001 - any failure makes the record unusable
        raise Undecodable(f"schema id {schema_id}: {e}") from e
    body = io.BytesIO(value)
    body.seek(5)
    try:
        record = fastavro.schemaless_reader(body, schema, None, return_record_name=True)
    except Exception as e:  # noqa: BLE001
        raise Undecodable(f"Avro body does not decode with schema id {schema_id}: {e}") from e
    if body.tell() != len(value):
        raise Undecodable(f"trailing bytes after the Avro body (schema id {schema_id})")
    return record


class Rejected(Exception):
    """A contract violation: counted and dropped where customer-graph dead-letters it."""


def bounded(what: str, value: str) -> None:
    if len(value) * 3 > MAX_ID_BYTES and len(value.encode()) > MAX_ID_BYTES:
        raise Rejected(f"{what} is longer than {MAX_ID_BYTES} bytes")


def nonnegative(what: str, value: int) -> None:
    if value < 0:
        raise Rejected(f"{what} is negative ({value})")


def iso_currency(c: str) -> None:
    if len(c) != 3 or not all("A" <= ch <= "Z" for ch in c):
        raise Rejected(f"currency {c!r} is not an ISO 4217 code")


def reject(key: Any, why: str) -> None:
    counts["rejected"] += 1
    if counts["rejected"] <= 10:
        log.warning("dropping a record keyed %r: %s", key, why)


class EventDeserializer(Deserializer):
    """A member event, decoded and checked as customer-graph's `validate` does
    (fold/contract.rs), flattened to what the fold reads. A record that cannot be used
    becomes {"reject": why}; the event-time check needs the record timestamp and
    happens in `accept_event`."""

    def __init__(self, registry: Registry):
        super().__init__()
        self.registry = registry

    def __call__(self, value: bytes, ctx) -> Any:
        if value is None:
            return None
        try:
            e = decode_wire(self.registry, value)
            if not e["event_id"].strip():
                raise Rejected("event_id is empty")
            if not e["member_id"].strip():
                raise Rejected("member_id is empty")
            for field in ("event_id", "member_id", "brand_id", "source"):
                bounded(field, e[field])
            if e["source_member_id"] is not None:
                bounded("source_member_id", e["source_member_id"])
            name, payload = e["payload"]
            kind = name.rsplit(".", 1)[-1]
            out = {
                "event_id": e["event_id"],
                "member_id": e["member_id"],
                "brand_id": e["brand_id"],
                "at": e["occurred_at"],
                "source": e["source"],
                "source_member_id": e["source_member_id"],
                "kind": kind,
            }
            if kind == "OrderPlaced":
                nonnegative("order amount_minor", payload["amount_minor"])
                iso_currency(payload["currency"])
                nonnegative("order items", payload["items"])
                out.update(
                    amount=payload["amount_minor"],
                    currency=payload["currency"],
                    margin=payload["margin_minor"],
                )
            elif kind == "PointsEarned":
                nonnegative("points earned", payload["points"])
                out.update(amount=payload["points"], qualifying=payload["qualifying"])
            return out
        except (Undecodable, Rejected, KeyError, TypeError, ValueError) as e:
            return {"reject": str(e)}


class ProfileDeserializer(Deserializer):
    """A member profile: what the fold reads of it (program and updated_at)."""

    def __init__(self, registry: Registry):
        super().__init__()
        self.registry = registry

    def __call__(self, value: bytes, ctx) -> Any:
        if value is None:
            return None
        try:
            p = decode_wire(self.registry, value)
            bounded("member_id", p["member_id"])
            bounded("program_id", p["program_id"])
            return {
                "profile": True,
                "member_id": p["member_id"],
                "program_id": p["program_id"],
                "at": p["updated_at"],
            }
        except (Undecodable, Rejected, KeyError, TypeError) as e:
            return {"reject": str(e)}


def event_time_ok(key: Any, what: str, at: int, logged: int) -> bool:
    """`Context::check_event_time`."""
    if at < 0:
        reject(key, f"{what} {at} ms is before 1970-01-01")
        return False
    if logged >= 0 and at - logged > MAX_EVENT_TIME_AHEAD_MS:
        reject(key, f"{what} is more than max_event_time_ahead_ms after its log timestamp")
        return False
    return True


def accept_event(value, key, timestamp, headers) -> bool:
    if value is None:
        reject(key, "an event tombstone")
        return False
    if "reject" in value:
        reject(key, value["reject"])
        return False
    if value["kind"] not in ("OrderPlaced", "PointsEarned"):
        counts["unsupported"] += 1
        if counts["unsupported"] <= 10:
            log.warning("skipping a %s event: the peer folds only what the CDNOW replay writes", value["kind"])
        return False
    return event_time_ok(key, "occurred_at", value["at"], timestamp)


def accept_profile(value, key, timestamp, headers) -> bool:
    if value is None:
        return False  # a profile tombstone is ignored, as customer-graph ignores it
    if "reject" in value:
        reject(key, value["reject"])
        return False
    if value["member_id"] != key:
        reject(key, f"member_id {value['member_id']} differs from the record key")
        return False
    return event_time_ok(key, "updated_at", value["at"], timestamp)


# ---- the programs table -------------------------------------------------------------


class Program:
    """A tier program (loyalty-contracts programs.rs), decoded from loyalty.programs.v1."""

    def __init__(self, r: dict):
        self.program_id = r["program_id"]
        self.spend_metric = r["qualifying_metric"] == "Spend"
        self.rolling = r["window"] == "Rolling"
        self.window_days = r["window_days"]
        self.grace_days = r["grace_days"]
        self.tiers = sorted(
            ((t["tier_id"], t["rank"], t["threshold"]) for t in r["tiers"]), key=lambda t: t[1]
        )

    def sound(self) -> bool:
        """`Program::problems` is empty."""
        if not self.tiers or self.grace_days < 0 or (self.rolling and self.window_days <= 0):
            return False
        for low, high in zip(self.tiers, self.tiers[1:]):
            if low[1] == high[1] or high[2] <= low[2]:
                return False
        return len({t[0] for t in self.tiers}) == len(self.tiers)

    def window_start(self, today: int) -> int:
        if self.rolling:
            return today - self.window_days + 1
        return datetime.date(ymd(today)[0], 1, 1).toordinal() - EPOCH_ORDINAL

    def evaluate_hold(self, held: Optional[list], amount: int, now: int) -> Optional[list]:
        """`Program::evaluate_hold`. A hold is [tier_id, rank, since, grace_until, manual]."""
        if not self.tiers:
            return None
        earned = self.tiers[0]
        for t in reversed(self.tiers):
            if amount >= t[2]:
                earned = t
                break
        if held is None or all(t[0] != held[0] for t in self.tiers) or earned[1] > held[1]:
            return [earned[0], earned[1], now, None, False]
        if earned[1] == held[1]:
            return [held[0], held[1], held[2], None, held[4]]
        if held[3] is None:
            return [held[0], held[1], held[2], now + self.grace_days * MILLIS_PER_DAY, held[4]]
        if now <= held[3]:
            return held
        return [earned[0], earned[1], now, None, False]


class ProgramsTable:
    """loyalty.programs.v1 read whole before processing starts, then followed, outside
    the consumer group (as customer-graph's runtime loads and follows its tables)."""

    def __init__(self, bootstrap: str, registry: Registry):
        self.registry = registry
        self.programs: dict[str, Optional[Program]] = {}
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-quixstreams-programs-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.loaded = threading.Event()
        self.stopping = threading.Event()

    def start(self, timeout: float = 60.0) -> None:
        metadata = self.consumer.list_topics(PROGRAMS, timeout=10)
        partitions = list(metadata.topics[PROGRAMS].partitions) if PROGRAMS in metadata.topics else []
        remaining = {}
        for p in partitions:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(PROGRAMS, p), timeout=10)
            if high > low:
                remaining[p] = high - 1
        self.consumer.assign([TopicPartition(PROGRAMS, p, OFFSET_BEGINNING) for p in partitions])
        threading.Thread(target=self._follow, args=(remaining,), daemon=True, name="programs").start()
        if not self.loaded.wait(timeout):
            raise RuntimeError(f"{PROGRAMS} did not load within {timeout}s")
        log.info("programs loaded: %s", sorted(self.programs))

    def _follow(self, remaining: dict) -> None:
        if not remaining:
            self.loaded.set()
        while not self.stopping.is_set():
            msg = self.consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                log.warning("programs: %s", msg.error())
                continue
            key = msg.key().decode() if msg.key() else ""
            if msg.value() is None:
                self.programs.pop(key, None)
            else:
                try:
                    program = Program(decode_wire(self.registry, msg.value()))
                    ok = program.program_id == key and program.sound()
                    self.programs[key] = program if ok else None
                    if not ok:
                        log.warning("program %s is unusable", key)
                except (Undecodable, KeyError, TypeError) as e:
                    log.warning("program %s does not decode: %s", key, e)
            if remaining.get(msg.partition(), -1) <= msg.offset():
                remaining.pop(msg.partition(), None)
                if not remaining:
                    self.loaded.set()

    def get(self, program_id: str) -> Optional[Program]:
        return self.programs.get(program_id)

    def stop(self) -> None:
        self.stopping.set()


# ---- the fold -----------------------------------------------------------------------


def day_of(ms: int) -> int:
    return ms // MILLIS_PER_DAY


def ymd(day: int) -> tuple[int, int, int]:
    d = datetime.date.fromordinal(day + EPOCH_ORDINAL)
    return d.year, d.month, d.day


def month_of(day: int) -> int:
    y, m, _ = ymd(day)
    return y * 12 + m - 1


def fnv1a(text: str) -> int:
    """`loyalty_contracts::fnv1a`."""
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def new_fold() -> dict:
    """customer-graph's `MemberFold`, as kept in the state store (JSON, quixstreams'
    default state serialisation). Days are [day, orders, spend, returned, qualifying_points]."""
    return {
        "as_of": 0,
        "first_event": None,
        "events_applied": 0,
        "recent_event_ids": [],
        "days": [],
        "retired_order_days": 0,
        "first_order_day": None,
        "first_day_spend": 0,
        "last_order_day": None,
        "order_months": [],
        "spend": 0,
        "margin": 0,
        "currency": None,
        "points_balance": 0,
        "points_earned": 0,
        "program_id": None,
        "tier": None,
        "identity_links": [],
        "brands": [],
    }


I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def add(what: str, total: int, amount: int) -> int:
    """`contract::add`: totals stay exact or the event is refused."""
    s = total + amount
    if not I64_MIN <= s <= I64_MAX:
        raise Rejected(f"{what} {amount} overflows the member's total {total}")
    return s


def remember(values: list, value: str) -> None:
    if value and len(values) < MAX_LINKS and value not in values:
        values.append(value)


def day_mut(f: dict, day: int) -> list:
    days = f["days"]
    i = bisect.bisect_left(days, day, key=lambda d: d[0])
    if i == len(days) or days[i][0] != day:
        days.insert(i, [day, 0, 0, 0, 0])
    return days[i]


def apply_event(f: dict, e: dict) -> bool:
    """`MemberFold::apply_event` for OrderPlaced and PointsEarned. False for a duplicate."""
    h = fnv1a(e["event_id"])
    ids = f["recent_event_ids"]
    if h in ids:
        return False
    if len(ids) >= DEDUPE_WINDOW:
        del ids[: len(ids) + 1 - DEDUPE_WINDOW]
    ids.append(h)
    f["events_applied"] += 1
    at = e["at"]
    f["as_of"] = max(f["as_of"], at)
    f["first_event"] = at if f["first_event"] is None else min(f["first_event"], at)
    day = day_of(at)
    remember(f["brands"], e["brand_id"])
    link = e["source_member_id"]
    if link is not None and link != e["member_id"]:
        remember(f["identity_links"], f"{e['source']}:{link}")
    if e["kind"] == "OrderPlaced":
        if f["currency"] is None:
            f["currency"] = e["currency"]
        amount = e["amount"]
        d = day_mut(f, day)
        d[1] += 1
        d[2] = add("order amount_minor", d[2], amount)
        new_day = d[1] == 1
        f["spend"] = add("order amount_minor", f["spend"], amount)
        f["margin"] = add("order margin_minor", f["margin"], e["margin"] or 0)
        if new_day:
            if f["first_order_day"] is None or day < f["first_order_day"]:
                f["first_order_day"] = day
                f["first_day_spend"] = 0
            f["last_order_day"] = day if f["last_order_day"] is None else max(f["last_order_day"], day)
            month = month_of(day)
            months = f["order_months"]
            i = bisect.bisect_left(months, month)
            if i == len(months) or months[i] != month:
                months.insert(i, month)
        if f["first_order_day"] == day:
            f["first_day_spend"] = add("order amount_minor", f["first_day_spend"], amount)
    elif e["kind"] == "PointsEarned":
        points = e["amount"]
        f["points_earned"] = add("points earned", f["points_earned"], points)
        f["points_balance"] = add("points earned", f["points_balance"], points)
        if e["qualifying"]:
            d = day_mut(f, day)
            d[4] = add("points earned", d[4], points)
    retire_old_days(f)
    return True


def retire_old_days(f: dict) -> None:
    """`retire_old_days`."""
    horizon = day_of(f["as_of"]) - RETENTION_DAYS
    days = f["days"]
    keep_from = bisect.bisect_left(days, horizon, key=lambda d: d[0])
    if keep_from > 0:
        f["retired_order_days"] += sum(1 for d in days[:keep_from] if d[1] > 0)
        del days[:keep_from]


def apply_profile(f: dict, p: dict) -> None:
    """`apply_profile`."""
    f["program_id"] = p["program_id"]
    if f["as_of"] == 0:
        f["as_of"] = p["at"]


def day_amount(program: Program, d: list) -> int:
    return d[2] - d[3] if program.spend_metric else d[4]


def qualifying(f: dict, program: Program) -> tuple[int, int]:
    """`qualifying`: the amount in the window containing as_of, and when it closes."""
    today = day_of(f["as_of"])
    start = program.window_start(today)
    if program.rolling:
        oldest = next((d[0] for d in f["days"] if d[0] >= start), today)
        window_end = (oldest + program.window_days) * MILLIS_PER_DAY
    else:
        year = ymd(today)[0]
        window_end = (datetime.date(year + 1, 1, 1).toordinal() - EPOCH_ORDINAL) * MILLIS_PER_DAY
    amount = sum(day_amount(program, d) for d in f["days"] if start <= d[0] <= today)
    return max(amount, 0), window_end


def evaluate_tier(f: dict, program: Optional[Program]) -> None:
    """`evaluate_tier`."""
    if program is None:
        return
    amount, _ = qualifying(f, program)
    if program.tiers:
        f["tier"] = program.evaluate_hold(f["tier"], amount, f["as_of"])


def streaks(f: dict) -> tuple[int, int]:
    """`streaks`."""
    longest = run = 0
    previous = None
    for month in f["order_months"]:
        run = run + 1 if previous == month - 1 else 1
        longest = max(longest, run)
        previous = month
    current_month = month_of(day_of(f["as_of"]))
    current = run if previous is not None and previous >= current_month - 1 else 0
    return current, longest


def tier_progress(f: dict, program: Optional[Program]) -> Optional[dict]:
    """`tier_progress`."""
    held = f["tier"]
    if program is None or held is None:
        return None
    amount, window_end = qualifying(f, program)
    nxt = next((t for t in program.tiers if t[1] > held[1]), None)
    today = day_of(f["as_of"])
    start = program.window_start(today)
    days = []
    for d in f["days"]:
        if start <= d[0] <= today:
            a = day_amount(program, d)
            if a != 0:
                days.append({"day": d[0], "amount": a})
    return {
        "program_id": program.program_id,
        "tier_id": held[0],
        "tier_rank": held[1],
        "tier_since": held[2],
        "qualifying_amount": amount,
        "next_tier_id": nxt[0] if nxt else None,
        "amount_to_next_tier": max(nxt[2] - amount, 0) if nxt else None,
        "window_end": window_end,
        "grace_until": held[3],
        "manual_override": held[4],
        "qualifying_days": days,
    }


def snapshot(f: dict, member_id: str, program: Optional[Program]) -> dict:
    """`MemberFold::snapshot`: a loyalty.member-state.v1 value."""
    order_days = f["retired_order_days"] + sum(1 for d in f["days"] if d[1] > 0)
    today = day_of(f["as_of"])
    first, last = f["first_order_day"], f["last_order_day"]
    btyd = rfm = None
    if first is not None and last is not None and order_days > 0:
        x = order_days - 1
        repeat_spend = f["spend"] - f["first_day_spend"]
        btyd = {
            "x": x,
            "t_x_days": last - first,
            "t_days": today - first,
            "first_purchase": first,
            "last_purchase": last,
            "mean_repeat_value_minor": repeat_spend / x if x > 0 else 0.0,
        }
        rfm = {
            "recency_days": today - last,
            "frequency": x + 1,
            "monetary_minor": float(f["spend"]) / float(x + 1),
        }
    fe = f["first_event"]
    tenure_days = 1 if fe is None else max((f["as_of"] - fe) // MILLIS_PER_DAY, 1)
    current, longest = streaks(f)
    return {
        "member_id": member_id,
        "as_of": f["as_of"],
        "events_applied": f["events_applied"],
        "btyd": btyd,
        "rfm": rfm,
        "spend_minor": f["spend"],
        "margin_minor": f["margin"],
        "returns_minor": 0,  # no OrderReturned in the CDNOW replay
        "returns_count": 0,
        "currency": f["currency"],
        "tier": tier_progress(f, program),
        "points": {
            "balance": f["points_balance"],
            "earned": f["points_earned"],
            "redeemed": 0,  # no PointsRedeemed / PointsExpired in the CDNOW replay
            "expired": 0,
            "earn_velocity_30d": float(f["points_earned"]) * 30.0 / float(tenure_days),
            "burn_velocity_30d": 0.0,
            "redemptions": 0,
        },
        "current_streak_months": current,
        "longest_streak_months": longest,
        "referrals": 0,
        "engagements": 0,
        "subscription_status": None,
        "identity_links": f["identity_links"],
        "brands": f["brands"],
    }


class Fold:
    """customer-graph's `handle` for one checked input, as a stateful apply."""

    def __init__(self, programs: ProgramsTable, default_program_id: str, schema: Any, schema_id: int):
        self.programs = programs
        self.default_program_id = default_program_id
        self.schema = schema
        self.header = b"\x00" + schema_id.to_bytes(4, "big")

    def __call__(self, value: dict, key: str, timestamp: int, headers: Any, state: State):
        stored = state.get("fold")
        f = new_fold() if stored is None else stored
        if value.get("profile"):
            apply_profile(f, value)
        else:
            try:
                if not apply_event(f, value):
                    counts["duplicates"] += 1
                    return None  # a duplicate: nothing changes, nothing is emitted
            except Rejected as e:
                reject(key, str(e))
                return None  # the stored fold is untouched
        program = self.programs.get(f["program_id"] or self.default_program_id)
        evaluate_tier(f, program)
        out = io.BytesIO()
        out.write(self.header)
        fastavro.schemaless_writer(out, self.schema, snapshot(f, key, program))
        state.set("fold", f)
        counts["emitted"] += 1
        return (out.getvalue(), f["as_of"])


# ---- the application ----------------------------------------------------------------


def create_output_topic(bootstrap: str, topic: str) -> None:
    """The output topic, compacted like loyalty.member-state.v1, with the inputs' partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10)
    if topic in metadata.topics:
        return
    partitions = len(metadata.topics[MEMBER_EVENTS].partitions)
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, config={"cleanup.policy": "compact"})]
    )
    try:
        futures[topic].result()
        log.info("created %s (%d partitions, compacted)", topic, partitions)
    except KafkaException as e:
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", default=env("BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--schema-registry-url", default=env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"))
    parser.add_argument("--consumer-group", default=env("CONSUMER_GROUP", "bench-quixstreams-customer-graph"))
    parser.add_argument(
        "--processing-guarantee",
        choices=["exactly-once", "at-least-once"],
        default=env("PROCESSING_GUARANTEE", "exactly-once"),
    )
    parser.add_argument("--state-dir", default=env("STATE_DIR", "/tmp/quixstreams-state"))
    parser.add_argument(
        "--commit-interval-ms",
        type=int,
        default=int(env("COMMIT_INTERVAL_MS", "100")),
        help="commit interval for both guarantees (quixstreams' default is 5000)",
    )
    parser.add_argument("--output-topic", default=env("OUTPUT_TOPIC", "bench.quixstreams.member-state"))
    parser.add_argument(
        "--default-program-id",
        default=env("DEFAULT_PROGRAM_ID", "cdnow-rewards"),
        help="program of members whose profile has not arrived (customer-graph's default_program_id, as swarm demo and swarm bench set it)",
    )
    parser.add_argument("--schemas", default=env("SCHEMAS_DIR", SCHEMAS), help="the repository's schemas/ folder")
    parser.add_argument("--loglevel", default=env("LOGLEVEL", "INFO"))
    args = parser.parse_args()
    logging.basicConfig(level=args.loglevel, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    registry = Registry(args.schema_registry_url)
    with open(os.path.join(args.schemas, "loyalty.member-state.v1-value.avsc")) as fh:
        member_state_text = fh.read()
    schema_id = registry.register(f"{args.output_topic}-value", member_state_text)
    member_state = fastavro.parse_schema(strip_logical(json.loads(member_state_text)))
    create_output_topic(args.bootstrap_servers, args.output_topic)
    programs = ProgramsTable(args.bootstrap_servers, registry)
    programs.start()

    app = Application(
        broker_address=args.bootstrap_servers,
        consumer_group=args.consumer_group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval_ms / 1000.0,
        state_dir=args.state_dir,
        processing_guarantee=args.processing_guarantee,
        # The Java client's partitioner, as every producer in the swarm uses
        # (docs/architecture.md#keys-and-co-partitioning): re-keyed events must land in
        # the partition the member's profile is in.
        producer_extra_config={"partitioner": "murmur2_random"},
        loglevel=args.loglevel,
    )
    events_topic = app.topic(MEMBER_EVENTS, key_deserializer="str", value_deserializer=EventDeserializer(registry))
    profiles_topic = app.topic(
        MEMBER_PROFILES, key_deserializer="str", value_deserializer=ProfileDeserializer(registry)
    )
    output_topic = app.topic(args.output_topic, key_serializer="str", value_serializer="bytes")

    events = app.dataframe(events_topic).filter(accept_event, metadata=True)
    of_member = events.filter(lambda v, k, ts, h: v["member_id"] == k, metadata=True)
    # An event keyed by another id (a store card) goes to its member's partition through
    # a repartition topic (quixstreams' group_by; customer-graph's rekey).
    rekeyed = events.filter(lambda v, k, ts, h: v["member_id"] != k, metadata=True).group_by(
        lambda v: v["member_id"], name="rekey", key_serializer="str", key_deserializer="str"
    )
    profiles = app.dataframe(profiles_topic).filter(accept_profile, metadata=True)
    merged = of_member.concat(rekeyed).concat(profiles)
    fold = Fold(programs, args.default_program_id, member_state, schema_id)
    out = merged.apply(fold, stateful=True, metadata=True)
    out = out.filter(lambda v: v is not None)
    out = out.set_timestamp(lambda v, k, ts, h: v[1])  # stamped with as_of, as customer-graph
    out = out.apply(lambda v: v[0])
    out.to_topic(output_topic)

    def report() -> None:
        while True:
            time.sleep(10)
            log.info("counts %s", counts)

    threading.Thread(target=report, daemon=True).start()
    log.info(
        "consumer_group=%s processing_guarantee=%s commit_interval_ms=%d output=%s (schema id %d)",
        args.consumer_group,
        args.processing_guarantee,
        args.commit_interval_ms,
        args.output_topic,
        schema_id,
    )
    try:
        app.run()
    finally:
        programs.stop()
        log.info("final counts %s", counts)


if __name__ == "__main__":
    main()  # quixstreams stops gracefully on SIGINT and SIGTERM
