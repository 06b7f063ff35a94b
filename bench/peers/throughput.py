#!/usr/bin/env python3
"""Side-by-side throughput: customer-graph against its Kafka Streams and quixstreams peers.

Why it exists
-------------
`swarm bench` times customer-graph alone, in-process, with the replay running at the
same time. To put loyalty-swarm next to Kafka Streams and quixstreams in one table, all
of them have to be measured the same way, on the same broker, from the same input. This
script does that: it preloads the CDNOW replay once, then runs every selected processor
(customer-graph under effectively_once and exactly_once, each peer under at-least-once
and exactly-once) over that backlog, several rounds, and reports events/s, state bytes
per member and start-up time.

    python3 bench/peers/throughput.py \\
        --bootstrap-servers 127.0.0.1:9092 --schema-registry-url http://127.0.0.1:8081 \\
        --swarm target/release/swarm --customer-graph target/release/customer-graph \\
        [--file data/cdnow/CDNOW_master.txt] [--rounds 3] \\
        [--processors customer-graph,customer-graph-eos,kafka-streams-alos,kafka-streams-eos,quix-alos,quix-eos] \\
        [--json out.json]

How it measures (the fairness rules)
------------------------------------
1. **One input for everyone.** `swarm setup` and, when the input topics are empty,
   `swarm replay` run once; every run reads the same preloaded records of
   `loyalty.member-events.v1` and `loyalty.member-profiles.v1` from the beginning.
2. **Every run starts from nothing.** A fresh consumer group / application id, state
   directory and output topic per run. customer-graph's own topic names are fixed
   (`customer-graph.members-changelog`, `.rekey-repartition`, `.dlq`) and it writes the
   fixed `loyalty.member-state.v1`, so before each of its runs those are deleted (and the
   deletion waited for), else it would restore the previous run's state; it recreates its
   own topics at start-up, and `loyalty.member-state.v1` is recreated here (compacted, the
   inputs' partition count), as `swarm setup` creates it.
3. **Interleaved rounds.** Each round runs every processor once, the order rotated by one
   per round (A B C, then B C A, ...), so drift on the machine (thermal, page cache, the
   broker's own growth) does not favour whoever runs first.
4. **One observer, one clock rule.** While a processor runs, its group's committed
   offsets are read every 100 ms (the same reader for all). The clock starts at the first
   reading whose committed total on the two inputs is > 0 — so JVM / Python / process
   start-up, topic creation and the group join are not counted, for everyone alike; that
   time is reported separately as start-up. It stops at the first reading where every
   input partition is committed to its end *and* the processor's repartition topic
   (store-card events re-keyed to their member) is committed to its end too: until then
   one event in eight or so is still unprocessed. A partition whose committed offset is
   short of the end only by transaction markers (quixstreams commits last record + 1, not
   past a trailing commit marker) counts as done; that is checked by reading the gap with
   a read_committed consumer. `processed = input records − committed at clock start`;
   `events/s = processed / elapsed`. The reading is at 100 ms granularity, so use an input
   that takes several seconds (the CDNOW master file, the default).
5. **Each framework at its own documented settings.** customer-graph runs as the tests
   start the binary (tests/tests/e2e/common/mod.rs: `--bootstrap-servers`,
   `--schema-registry-url`, `--http-listen` on a free port, `agent.default_program_id`)
   with the runtime settings `swarm bench` uses (agents/swarm/src/demo/mod.rs: every
   runtime default — 5,000 records / 50 ms batches — except partitions, the guarantee
   and the default program), so its figures are comparable to `swarm bench`'s; besides
   those only `group_id` is set (fresh per run; its transactional id derives from it).
   The tests' `batch_max_wait_ms=20`, `retry_max_ms` and session timeout are left out:
   they are the tests' own, not what `swarm bench` runs (`--customer-graph-set` adds
   any). The peers run with their own defaults (README.md: Kafka Streams 2 stream
   threads, 100 ms commits; quixstreams one process, 100 ms commits).
6. **State size** is read from each processor's changelog once it has stopped: the newest
   value per key, summed, over the number of keys (what `swarm bench` reports as
   state_bytes_per_member).

A run that has not finished after --timeout seconds, or whose process exits, is recorded
as failed; the processor is stopped (SIGTERM, SIGKILL after 20 s) and the next run goes
on. Each run's topics (output, changelog, repartition) and group are deleted after it is
measured, unless --keep-topics; customer-graph's are deleted before its next run.

Output: one line per run on stderr as it goes, then a Markdown table on stdout
(processor | guarantee | median events/s | each run | ratio to customer-graph of the same
guarantee class — effectively_once against the at-least-once peers, exactly_once against
the exactly-once peers | median state bytes/member | median start-up), and with --json
everything (every run, the input, the settings).

Needs confluent-kafka (bench/peers/quixstreams/requirements.txt); the Kafka Streams peer
needs `java` and its jar built (`mvn -q -B package` in bench/peers/kafka-streams), the
quixstreams peer its venv (bench/peers/quixstreams/.venv, used when present).
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Optional

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))

MEMBER_EVENTS = "loyalty.member-events.v1"
MEMBER_PROFILES = "loyalty.member-profiles.v1"
PROGRAMS = "loyalty.programs.v1"
MEMBER_STATE = "loyalty.member-state.v1"
INPUTS = (MEMBER_EVENTS, MEMBER_PROFILES)
PROGRAM_ID = "cdnow-rewards"  # agents/swarm/src/cdnow.rs PROGRAM_ID, as swarm demo / bench set it

# customer-graph's own topics (agents/runtime/src/runner/topics.rs, NAME "customer-graph",
# STORE "members"); it creates them at start-up when missing.
CG_CHANGELOG = "customer-graph.members-changelog"
CG_REPARTITION = "customer-graph.rekey-repartition"
CG_DLQ = "customer-graph.dlq"
CG_SUMMARIES = "customer-graph.members-summaries"  # not used by customer-graph; deleted if present
CG_TOPICS = (CG_CHANGELOG, CG_REPARTITION, CG_DLQ, CG_SUMMARIES, MEMBER_STATE)

# name: (framework, guarantee as the processor names it, guarantee class)
PROCESSORS = {
    "customer-graph": ("customer-graph", "effectively_once", "alos"),
    "customer-graph-eos": ("customer-graph", "exactly_once", "eos"),
    "kafka-streams-alos": ("kafka-streams", "at_least_once", "alos"),
    "kafka-streams-eos": ("kafka-streams", "exactly_once_v2", "eos"),
    "quix-alos": ("quix", "at-least-once", "alos"),
    "quix-eos": ("quix", "exactly-once", "eos"),
}
REFERENCE = {"alos": "customer-graph", "eos": "customer-graph-eos"}

STOP_GRACE_S = 20.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- subprocesses and clean-up --------------------------------------------------------

CHILDREN: list[subprocess.Popen] = []
TEMP_DIRS: list[str] = []
KEEP_TEMP = False
_cleaned = False


def stop_process(proc: subprocess.Popen, grace: float) -> Optional[int]:
    """SIGTERM to the process group the child leads, SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc in CHILDREN:
        CHILDREN.remove(proc)
    return proc.returncode


def cleanup() -> None:
    global _cleaned
    if _cleaned:
        return
    _cleaned = True
    for proc in list(CHILDREN):
        stop_process(proc, 5.0)
    for d in TEMP_DIRS:
        if KEEP_TEMP:
            log(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


def on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def spawn(cmd: list[str], log_path: str) -> subprocess.Popen:
    with open(log_path, "wb") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: signalled as one, not by Ctrl-C
            cwd=REPO,
        )
    CHILDREN.append(proc)
    return proc


def log_tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the cluster ---------------------------------------------------------------------


def kafka_code(e: KafkaException) -> Optional[int]:
    err = e.args[0] if e.args else None
    return err.code() if isinstance(err, KafkaError) else None


class Cluster:
    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        # Watermarks of topics written in transactions: read_committed, so "latest" is
        # the last stable offset.
        self.reader = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-throughput-reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )

    def close(self) -> None:
        self.reader.close()

    def topics(self) -> dict:
        """name -> TopicMetadata of every topic the cluster lists."""
        return self.admin.list_topics(timeout=30).topics

    def partitions(self, topic: str) -> list[int]:
        t = self.topics().get(topic)
        return sorted(t.partitions) if t is not None else []

    def watermark(self, topic: str, partition: int) -> tuple[int, int]:
        marks = self.reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=30, cached=False)
        if marks is None:
            raise RuntimeError(f"no watermarks for {topic} [{partition}] within 30 s")
        return marks

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        return {p: self.watermark(topic, p) for p in self.partitions(topic)}

    def delete_topics(self, names: list[str], limit: float = 120.0) -> None:
        """Delete the topics that exist among `names` and wait until none is listed
        (deletion is asynchronous on Kafka: a topic recreated too soon is the old one)."""
        listed = self.topics()
        present = [n for n in names if n in listed]
        if not present:
            return
        for name, future in self.admin.delete_topics(present, operation_timeout=30).items():
            try:
                future.result()
            except KafkaException as e:
                if kafka_code(e) != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
        deadline = time.monotonic() + limit
        while True:
            listed = self.topics()
            if not any(n in listed for n in present):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics still listed {limit:.0f}s after deleting them: {present}")
            time.sleep(0.2)

    def create_topic(self, name: str, partitions: int, replication: int, config: dict, limit: float = 60.0) -> None:
        """Create `name`; a just-deleted topic of that name may still be going away, so
        TOPIC_ALREADY_EXISTS is retried until `limit`."""
        deadline = time.monotonic() + limit
        while True:
            topic = NewTopic(name, num_partitions=partitions, replication_factor=replication, config=config)
            future = self.admin.create_topics([topic], operation_timeout=30)[name]
            try:
                future.result()
                return
            except KafkaException as e:
                if kafka_code(e) != KafkaError.TOPIC_ALREADY_EXISTS or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def delete_groups(self, groups: list[str]) -> None:
        """Best effort: a group that is gone, or still has a leaving member, is left."""
        if not groups:
            return
        try:
            futures = self.admin.delete_consumer_groups(groups, request_timeout=15)
        except (KafkaException, ValueError) as e:
            log(f"  (groups not deleted: {e})")
            return
        for future in futures.values():
            try:
                future.result()
            except KafkaException:
                pass

    def replication_of(self, topic: str) -> int:
        """Replicas of `topic`'s partition 0 (-1, the broker's default, if not reported)."""
        t = self.topics().get(topic)
        if t is None or not t.partitions:
            return -1
        replicas = len(t.partitions[min(t.partitions)].replicas)
        return replicas if replicas > 0 else -1


class GroupOffsets:
    """A group's committed offsets, read through a consumer of that group that never
    subscribes (so it never joins or disturbs the group). read_uncommitted on purpose:
    read_committed would ask for stable offsets and stall on a transaction in flight;
    offsets committed in a transaction are visible once it commits either way."""

    def __init__(self, bootstrap: str, group: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})

    def committed(self, tps: list[tuple[str, int]]) -> Optional[dict]:
        """(topic, partition) -> committed offset or None; None if the read failed."""
        try:
            result = self.consumer.committed([TopicPartition(t, p) for t, p in tps], timeout=10)
        except KafkaException:
            return None
        return {
            (tp.topic, tp.partition): (tp.offset if tp.error is None and tp.offset >= 0 else None) for tp in result
        }

    def close(self) -> None:
        self.consumer.close()


class GapCheck:
    """Whether [committed, end) of some partitions holds any record a read_committed
    consumer would be given (as opposed to transaction markers and aborted records)."""

    def __init__(self, bootstrap: str):
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-throughput-gap-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        self.inconclusive = 0

    def only_markers(self, gaps: dict[tuple[str, int], tuple[int, int]], wait: float = 2.0) -> bool:
        self.consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _end) in gaps.items()])
        left = dict(gaps)
        deadline = time.monotonic() + wait
        try:
            while left:
                if time.monotonic() > deadline:
                    # Nothing delivered within `wait` on a consumer positioned at the gap:
                    # no committed record is there. Counted, in case the client never
                    # moved its position past the markers.
                    self.inconclusive += 1
                    return True
                msg = self.consumer.poll(0.05)
                if msg is not None and not msg.error():
                    gap = left.get((msg.topic(), msg.partition()))
                    if gap is not None and msg.offset() < gap[1]:
                        return False  # a record the group has not committed yet
                for tp in list(left):
                    pos = self.consumer.position([TopicPartition(*tp)])[0].offset
                    if pos >= left[tp][1]:
                        left.pop(tp)
            return True
        finally:
            self.consumer.unassign()

    def close(self) -> None:
        self.consumer.close()


def read_state(bootstrap: str, topics: list[str], limit: float = 300.0) -> tuple[int, int]:
    """(bytes, keys) of the newest non-tombstone value of every key in `topics`, read to
    the end with read_committed."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-throughput-state-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    latest: dict = {}
    try:
        for topic in topics:
            md = consumer.list_topics(topic, timeout=30)
            ends = {}
            for p in md.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
                if high > low:
                    ends[p] = high
            if not ends:
                continue
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
            deadline = time.monotonic() + limit
            while ends:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{topic} not read to its end within {limit:.0f}s")
                msgs = consumer.consume(1000, 1.0)
                if not msgs:
                    # Quiet: with read_committed the last offsets may be transaction markers,
                    # never delivered; the position moves past them.
                    for p in list(ends):
                        if consumer.position([TopicPartition(topic, p)])[0].offset >= ends[p]:
                            ends.pop(p)
                    continue
                for m in msgs:
                    if m.error():
                        continue
                    key = (topic, m.key())
                    if m.value() is None:
                        latest.pop(key, None)
                    else:
                        latest[key] = len(m.value())
                    if m.offset() >= ends.get(m.partition(), 0) - 1:
                        ends.pop(m.partition(), None)
            consumer.unassign()
    finally:
        consumer.close()
    return sum(latest.values()), len(latest)


# ---- one run -------------------------------------------------------------------------


class Run:
    """One processor, once: its names, its command, its topics."""

    def __init__(self, args, name: str, round_no: int, token: str, tmp: str, partitions: int):
        self.args = args
        self.name = name
        self.framework, self.guarantee, self.klass = PROCESSORS[name]
        self.round = round_no
        self.id = f"bench-tp-{name}-{token}-r{round_no}"  # group / application id
        self.dir = os.path.join(tmp, f"{name}-r{round_no}")
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "process.log")
        self.state_dir = os.path.join(self.dir, "state")
        self.partitions = partitions
        if self.framework == "customer-graph":
            self.output = MEMBER_STATE
        else:
            self.output = f"bench.throughput.{name}.{token}.r{round_no}"

    def command(self) -> list[str]:
        a = self.args
        if self.framework == "customer-graph":
            cmd = [
                a.customer_graph,
                "--bootstrap-servers", a.bootstrap_servers,
                "--schema-registry-url", a.schema_registry_url,
                "--http-listen", f"127.0.0.1:{free_port()}",
                "--set", f"agent.default_program_id={PROGRAM_ID}",
                "--set", f"partitions={self.partitions}",
                "--set", f"group_id={self.id}",
            ]
            if self.guarantee == "exactly_once":
                # transactional_id defaults to <group>.<host>.<http port>: fresh per run.
                cmd += ["--set", "processing_guarantee=exactly_once"]
            for extra in a.customer_graph_set:
                cmd += ["--set", extra]
            return cmd
        if self.framework == "kafka-streams":
            return [
                a.java,
                *a.java_opts.split(),
                "-jar", a.kafka_streams_jar,
                "--bootstrap-servers", a.bootstrap_servers,
                "--schema-registry-url", a.schema_registry_url,
                "--application-id", self.id,
                "--processing-guarantee", self.guarantee,
                "--state-dir", self.state_dir,
                "--output-topic", self.output,
            ]
        return [
            a.quix_python,
            a.quix_fold,
            "--bootstrap-servers", a.bootstrap_servers,
            "--schema-registry-url", a.schema_registry_url,
            "--consumer-group", self.id,
            "--processing-guarantee", self.guarantee,
            "--state-dir", self.state_dir,
            "--output-topic", self.output,
        ]

    def repartition_topics(self, listed) -> list[str]:
        if self.framework == "customer-graph":
            names = [CG_REPARTITION]
        elif self.framework == "kafka-streams":
            names = [f"{self.id}-rekey-repartition"]  # Repartitioned.as("rekey")
        else:
            names = [t for t in listed if t.startswith(f"repartition__{self.id}--")]  # group_by(name="rekey")
        return [t for t in names if t in listed]

    def changelog_topics(self, listed) -> list[str]:
        if self.framework == "customer-graph":
            names = [CG_CHANGELOG]
        elif self.framework == "kafka-streams":
            names = [f"{self.id}-members-changelog"]  # store "members"
        else:
            names = [t for t in listed if t.startswith(f"changelog__{self.id}--")]
        return [t for t in names if t in listed]

    def own_topics(self, listed) -> list[str]:
        """What the run created and nobody else reads (deleted after it, for peers)."""
        if self.framework == "kafka-streams":
            mine = [t for t in listed if t.startswith(f"{self.id}-")]
        elif self.framework == "quix":
            mine = [t for t in listed if t.startswith((f"changelog__{self.id}--", f"repartition__{self.id}--"))]
        else:
            return []
        return mine + ([self.output] if self.output in listed else [])

    def groups(self) -> list[str]:
        if self.framework == "customer-graph":
            return [self.id, f"{self.id}.restore", f"{self.id}.tables"]
        return [self.id]


def prepare_customer_graph(cluster: Cluster, partitions: int, replication: int) -> None:
    """customer-graph's topic names are fixed: delete them so it starts with no state and
    an empty output, and recreate the output it does not create itself."""
    cluster.delete_topics(list(CG_TOPICS))
    cluster.create_topic(MEMBER_STATE, partitions, replication, {"cleanup.policy": "compact"})


def measure(run: Run, cluster: Cluster, input_ends: dict, timeout: float, poll_s: float) -> dict:
    """Start the processor and watch its group until it has committed everything."""
    result: dict = {
        "processor": run.name,
        "framework": run.framework,
        "guarantee": run.guarantee,
        "class": run.klass,
        "round": run.round,
        "group": run.id,
        "output_topic": run.output,
        "ok": False,
    }
    end_total = sum(input_ends.values())
    tracked = list(input_ends)  # (topic, partition) read each time; repartition added at clock start
    rekey_tps: list[tuple[str, int]] = []
    offsets = GroupOffsets(cluster.bootstrap, run.id)
    gaps = GapCheck(cluster.bootstrap)
    cmd = run.command()
    result["command"] = cmd
    spawned = time.monotonic()
    proc = spawn(cmd, run.log)
    start = start_committed = inputs_done = None
    try:
        while True:
            now = time.monotonic()
            if now - spawned > timeout:
                result["error"] = f"timed out after {timeout:.0f}s"
                break
            if proc.poll() is not None:
                result["error"] = f"exited with status {proc.returncode}"
                break
            committed = offsets.committed(tracked)
            if committed is not None:
                inputs_total = sum(min(committed.get(tp) or 0, end) for tp, end in input_ends.items())
                if start is None:
                    if inputs_total > 0:
                        start, start_committed = now, inputs_total
                        # Every processor has created its repartition topic by its first
                        # commit; from the next reading on it is read with the inputs.
                        repartition = run.repartition_topics(cluster.topics())
                        if not repartition:
                            log(f"  warning: no repartition topic found for {run.name}; timing the inputs only")
                        rekey_tps = [(t, p) for t in repartition for p in cluster.partitions(t)]
                        tracked = tracked + rekey_tps
                        result["repartition_topics"] = repartition
                elif all((committed.get(tp) or 0) >= end for tp, end in input_ends.items()):
                    if inputs_done is None:
                        inputs_done = now
                    if drained(cluster, gaps, committed, rekey_tps):
                        elapsed = now - start
                        processed = end_total - start_committed
                        result.update(
                            ok=elapsed > 0 and processed > 0,
                            elapsed_s=elapsed,
                            processed=processed,
                            input_records=end_total,
                            committed_at_clock_start=start_committed,
                            events_per_s=processed / elapsed if elapsed > 0 and processed > 0 else None,
                            startup_s=start - spawned,
                            inputs_done_s=inputs_done - start,
                            # The same rate with the clock stopped at the last input commit.
                            events_per_s_inputs_only=(
                                processed / (inputs_done - start) if inputs_done > start and processed > 0 else None
                            ),
                            repartition_tail_s=now - inputs_done,
                            gap_checks_inconclusive=gaps.inconclusive,
                        )
                        if not result["ok"]:
                            result["error"] = "the first commit covered the whole input: use a larger file"
                        break
            time.sleep(max(0.0, now + poll_s - time.monotonic()))
    finally:
        result["exit_status"] = stop_process(proc, STOP_GRACE_S)
        offsets.close()
        gaps.close()
    if not result["ok"]:
        result["log_tail"] = log_tail(run.log)
    return result


def drained(cluster: Cluster, gaps: GapCheck, committed: dict, rekey_tps: list[tuple[str, int]]) -> bool:
    """Every repartition partition committed to its high watermark, or short of it only
    by transaction markers (the caller has checked the inputs)."""
    short = {}
    for t, p in rekey_tps:
        low, high = cluster.watermark(t, p)
        c = committed.get((t, p))
        c = low if c is None else c
        if c < high:
            short[(t, p)] = (c, high)
    if not short:
        return True
    # One marker per transaction that wrote to the partition: more than two offsets short
    # is records still to process.
    if any(high - c > 2 for c, high in short.values()):
        return False
    return gaps.only_markers(short)


# ---- the whole benchmark -------------------------------------------------------------


def input_counts(cluster: Cluster) -> dict:
    out = {}
    for topic in INPUTS:
        marks = cluster.watermarks(topic)
        out[topic] = {
            "partitions": len(marks),
            "records": sum(high - low for low, high in marks.values()),
        }
    return out


def preload(args, cluster: Cluster) -> dict:
    base = [args.bootstrap_servers, args.schema_registry_url]
    setup = [args.swarm, "setup", "--bootstrap-servers", base[0], "--schema-registry-url", base[1],
             "--partitions", str(args.partitions)]
    log("$ " + " ".join(setup))
    subprocess.run(setup, check=True, stdout=subprocess.DEVNULL)
    counts = input_counts(cluster)
    total = sum(c["records"] for c in counts.values())
    replay_summary = None
    if total == 0:
        replay = [args.swarm, "replay", "--bootstrap-servers", base[0], "--schema-registry-url", base[1]]
        if args.file:
            replay += ["--file", args.file]
        log("$ " + " ".join(replay))
        done = subprocess.run(replay, check=True, stdout=subprocess.PIPE)
        try:
            replay_summary = json.loads(done.stdout)
        except ValueError:
            replay_summary = {"stdout": done.stdout.decode(errors="replace")}
        counts = input_counts(cluster)
        total = sum(c["records"] for c in counts.values())
    else:
        log(f"the input topics already hold {total:,} records: not replaying"
            + (f" (--file {args.file} ignored)" if args.file else ""))
    programs = sum(high - low for low, high in cluster.watermarks(PROGRAMS).values())
    if programs == 0:
        log(f"warning: {PROGRAMS} is empty; every member will be folded without a program")
    return {"records": total, "topics": counts, "replay": replay_summary, "programs_records": programs}


def median(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(names: list[str], runs: list[dict]) -> list[dict]:
    rows = []
    for name in names:
        mine = [r for r in runs if r["processor"] == name]
        ok = [r for r in mine if r["ok"]]
        rows.append(
            {
                "processor": name,
                "guarantee": PROCESSORS[name][1],
                "class": PROCESSORS[name][2],
                "median_events_per_s": median([r["events_per_s"] for r in ok]),
                "events_per_s": [r["events_per_s"] if r["ok"] else None for r in mine],
                "failed": len(mine) - len(ok),
                "median_state_bytes_per_member": median([r.get("state_bytes_per_member") for r in ok]),
                "median_startup_s": median([r.get("startup_s") for r in ok]),
            }
        )
    by_name = {row["processor"]: row for row in rows}
    for row in rows:
        ref = by_name.get(REFERENCE[row["class"]])
        row["reference"] = REFERENCE[row["class"]]
        if ref and ref["median_events_per_s"] and row["median_events_per_s"] is not None:
            row["ratio_vs_customer_graph"] = row["median_events_per_s"] / ref["median_events_per_s"]
        else:
            row["ratio_vs_customer_graph"] = None
    return rows


def markdown(rows: list[dict], input_info: dict, rounds: int) -> str:
    def num(v, fmt):
        return "–" if v is None else format(v, fmt)

    lines = [
        f"{input_info['records']:,} input records (member events + profiles), {rounds} round(s); "
        "ratio = median events/s ÷ customer-graph's of the same guarantee class "
        "(effectively_once vs at-least-once, exactly_once vs exactly-once)",
        "",
        "| processor | guarantee | median events/s | runs (events/s) | ratio vs customer-graph "
        "| median state bytes/member | median start-up s |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        each = " / ".join("failed" if v is None else f"{v:,.0f}" for v in r["events_per_s"]) or "–"
        ratio = num(r["ratio_vs_customer_graph"], ".2f")
        if r["processor"] == r["reference"] and r["ratio_vs_customer_graph"] is not None:
            ratio += " (ref)"
        lines.append(
            f"| {r['processor']} | {r['guarantee']} | {num(r['median_events_per_s'], ',.0f')} | {each} | {ratio} "
            f"| {num(r['median_state_bytes_per_member'], '.1f')} | {num(r['median_startup_s'], '.2f')} |"
        )
    return "\n".join(lines)


def git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def parse_args() -> argparse.Namespace:
    default_quix_python = os.path.join(HERE, "quixstreams", ".venv", "bin", "python")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--schema-registry-url", required=True)
    ap.add_argument("--swarm", required=True, help="the swarm binary (a release build)")
    ap.add_argument("--customer-graph", help="the customer-graph binary (a release build); "
                    "needed when a customer-graph processor is selected")
    ap.add_argument("--file", help="CDNOW-format file to replay [swarm's default: the built-in CDNOW master file]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processors", default=",".join(PROCESSORS),
                    help=f"comma-separated, from {', '.join(PROCESSORS)} [all]")
    ap.add_argument("--json", help="write every run and the summary here")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it counts as failed")
    ap.add_argument("--poll-ms", type=int, default=100, help="how often committed offsets are read")
    ap.add_argument("--partitions", type=int, default=12, help="for swarm setup (topics it creates)")
    ap.add_argument("--customer-graph-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra --set for customer-graph (repeatable); none by default, as swarm bench")
    ap.add_argument("--java", default="java")
    ap.add_argument("--java-opts", default="-Xmx768m", help="JVM options of the Kafka Streams peer")
    ap.add_argument("--kafka-streams-jar",
                    default=os.path.join(HERE, "kafka-streams", "target", "customer-graph-fold.jar"))
    ap.add_argument("--quix-python",
                    default=default_quix_python if os.path.exists(default_quix_python) else sys.executable,
                    help="Python with quixstreams [quixstreams/.venv if present, else this one]")
    ap.add_argument("--quix-fold", default=os.path.join(HERE, "quixstreams", "fold.py"))
    ap.add_argument("--keep-topics", action="store_true",
                    help="keep each peer run's output, changelog and repartition topics and groups")
    ap.add_argument("--keep-temp", action="store_true", help="keep the logs and state directories")
    args = ap.parse_args()

    names = []
    for n in (s.strip() for s in args.processors.split(",")):
        if n and n not in names:
            if n not in PROCESSORS:
                ap.error(f"unknown processor {n!r}; choose from {', '.join(PROCESSORS)}")
            names.append(n)
    if not names:
        ap.error("no processor selected")
    args.names = names
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    frameworks = {PROCESSORS[n][0] for n in names}
    problems = []
    if not os.access(args.swarm, os.X_OK):
        problems.append(f"--swarm {args.swarm}: not an executable file")
    if "customer-graph" in frameworks and not (args.customer_graph and os.access(args.customer_graph, os.X_OK)):
        problems.append(f"--customer-graph {args.customer_graph}: not an executable file")
    if "kafka-streams" in frameworks:
        if shutil.which(args.java) is None:
            problems.append(f"--java {args.java}: not found")
        if not os.path.isfile(args.kafka_streams_jar):
            problems.append(f"{args.kafka_streams_jar} missing: `mvn -q -B package` in bench/peers/kafka-streams")
    if "quix" in frameworks and not os.path.isfile(args.quix_fold):
        problems.append(f"--quix-fold {args.quix_fold}: missing")
    if args.file and not os.path.isfile(args.file):
        problems.append(f"--file {args.file}: missing")
    if problems:
        ap.error("; ".join(problems))
    for flag, path in (("--swarm", args.swarm), ("--customer-graph", args.customer_graph)):
        if path and f"{os.sep}debug{os.sep}" in os.path.abspath(path):
            log(f"warning: {flag} {path} looks like a debug build; figures need release builds")
    args.swarm = os.path.abspath(args.swarm)
    if args.customer_graph:
        args.customer_graph = os.path.abspath(args.customer_graph)
    if args.file:
        args.file = os.path.abspath(args.file)
    return args


def main() -> int:
    global KEEP_TEMP
    args = parse_args()
    KEEP_TEMP = args.keep_temp
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    tmp = tempfile.mkdtemp(prefix="peers-throughput-")
    TEMP_DIRS.append(tmp)
    token = uuid.uuid4().hex[:6]
    cluster = Cluster(args.bootstrap_servers)
    report: dict = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "bootstrap_servers": args.bootstrap_servers,
        "schema_registry_url": args.schema_registry_url,
        "swarm": args.swarm,
        "customer_graph": args.customer_graph,
        "file": args.file,
        "rounds": args.rounds,
        "processors": args.names,
        "poll_ms": args.poll_ms,
        "timeout_s": args.timeout,
        "customer_graph_set": args.customer_graph_set,
        "java_opts": args.java_opts,
        "host": {"name": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "git_commit": git_commit(),
        "runs": [],
    }
    try:
        report["input"] = preload(args, cluster)
        input_ends = {}
        for topic in INPUTS:
            for p, (_low, high) in cluster.watermarks(topic).items():
                input_ends[(topic, p)] = high
        partitions = len(cluster.partitions(MEMBER_EVENTS))
        replication = cluster.replication_of(MEMBER_EVENTS)
        log(f"input: {report['input']['records']:,} records on {partitions} partitions; "
            f"{len(args.names)} processor(s) × {args.rounds} round(s); logs in {tmp}")
        n = len(args.names)
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % n
            order = args.names[shift:] + args.names[:shift]
            for i, name in enumerate(order, 1):
                run = Run(args, name, round_no, token, tmp, partitions)
                try:
                    if run.framework == "customer-graph":
                        prepare_customer_graph(cluster, partitions, replication)
                    result = measure(run, cluster, input_ends, args.timeout, args.poll_ms / 1000.0)
                except (KafkaException, RuntimeError, OSError) as e:
                    result = {"processor": name, "guarantee": run.guarantee, "class": run.klass,
                              "round": round_no, "group": run.id, "ok": False,
                              "error": f"{type(e).__name__}: {e}", "log_tail": log_tail(run.log)}
                listed: dict = {}
                try:
                    listed = cluster.topics()
                    changelogs = run.changelog_topics(listed)
                    result["changelog_topics"] = changelogs
                    state_bytes, keys = read_state(cluster.bootstrap, changelogs)
                    result["state_bytes"] = state_bytes
                    result["state_keys"] = keys
                    result["state_bytes_per_member"] = state_bytes / keys if keys else None
                    if run.output in listed:
                        result["output_high_watermarks"] = sum(h for _l, h in cluster.watermarks(run.output).values())
                except (KafkaException, RuntimeError) as e:
                    result["state_error"] = str(e)
                if not args.keep_topics:
                    try:
                        cluster.delete_topics(run.own_topics(listed))
                        cluster.delete_groups(run.groups())
                    except (KafkaException, RuntimeError) as e:
                        log(f"  (clean-up after the run failed: {e})")
                report["runs"].append(result)
                head = f"round {round_no}/{args.rounds} [{i}/{n}] {name} ({run.guarantee})"
                if result["ok"]:
                    spb = result.get("state_bytes_per_member")
                    log(f"{head}: {result['events_per_s']:,.0f} events/s — {result['processed']:,} records in "
                        f"{result['elapsed_s']:.2f} s (inputs done at {result['inputs_done_s']:.2f} s, "
                        f"repartition tail {result['repartition_tail_s']:.2f} s); start-up {result['startup_s']:.2f} s; "
                        f"state {'–' if spb is None else f'{spb:.1f}'} B/member × {result.get('state_keys', 0):,}")
                else:
                    log(f"{head}: FAILED — {result.get('error')}\n  log {run.log}, last lines:\n"
                        + "\n".join("    " + line for line in result.get("log_tail", "").splitlines()))
    except KeyboardInterrupt:
        log("interrupted; reporting what ran")
    except subprocess.CalledProcessError as e:
        log(f"{' '.join(e.cmd)} failed with status {e.returncode}")
        return 2
    finally:
        rows = summarise(args.names, report["runs"])
        report["summary"] = rows
        report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(report, fh, indent=2, default=str)
            log(f"wrote {args.json}")
        if report["runs"] and "input" in report:
            print(markdown(rows, report["input"], args.rounds), flush=True)
        cluster.close()
        cleanup()
    return 0 if report["runs"] and all(r["ok"] for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
