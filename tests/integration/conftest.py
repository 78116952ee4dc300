"""Fixtures for the real-broker tests: the local Kafka broker, fresh topics, a running worker."""
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

SRC = Path(os.environ.get("SLUICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = os.environ.get("SLUICE_BIN", str(SRC / "build" / "sluice"))
KAFKA = SRC / "deploy" / "kafka-local.sh"


def schema(name):
    return fastavro.parse_schema(fastavro.schema.load_schema(str(SRC / "schemas" / f"{name}.avsc")))


@pytest.fixture(scope="session")
def bootstrap():
    """The local broker; started (and stopped afterwards) unless already running."""
    status = subprocess.run([str(KAFKA), "status"], capture_output=True, text=True)
    started = status.returncode != 0
    if started:
        subprocess.run([str(KAFKA), "start"], check=True)
    addr = subprocess.run([str(KAFKA), "bootstrap"], check=True, capture_output=True,
                          text=True).stdout.strip()
    yield addr
    if started:
        subprocess.run([str(KAFKA), "stop"], check=False)


def make_topics(requests_partitions=4):
    """Fresh topic names (and a consumer group), created on the local broker."""
    tag = uuid.uuid4().hex[:8]
    t = {
        "requests": f"it-{tag}.requests",
        "responses": f"it-{tag}.responses",
        "dead_letters": f"it-{tag}.dead-letters",
        "metrics": f"it-{tag}.metrics",
    }
    subprocess.run([str(KAFKA), "create-topics", f"{t['requests']}:{requests_partitions}",
                    f"{t['responses']}:4", f"{t['dead_letters']}:1", f"{t['metrics']}:1"],
                   check=True)
    t["group"] = f"it-{tag}"
    return t


@pytest.fixture(scope="module")
def topics(bootstrap):
    """Fresh topics for one test module (several partitions for requests/responses)."""
    return make_topics()


class Worker:
    def __init__(self, proc, log):
        self.proc = proc
        self.log = log

    def log_text(self):
        return Path(self.log).read_text(errors="replace")

    def stop(self, timeout=60):
        """SIGTERM: the worker drains, commits and exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def worker_config(path, bootstrap, topics, worker_id="it-worker", kafka="", extra="", codec=""):
    """Write a worker config for topics; kafka adds settings to the kafka group."""
    path.write_text(f"""
worker: {{ id = "{worker_id}"; models_dir = "{SRC / 'models'}"; metrics_interval_ms = 2000; }};
batch: {{ max_size = 32; max_wait_ms = 5; }};
topics: {{
  requests = ["{topics['requests']}"];
  responses = "{topics['responses']}";
  dead_letters = "{topics['dead_letters']}";
  metrics = "{topics['metrics']}";
}};
codec: {{ schema_dir = "{SRC / 'schemas'}"; {codec} }};
kafka: {{ bootstrap_servers = "{bootstrap}"; group_id = "{topics['group']}"; {kafka} }};
{extra}
""")
    return path


def start_worker(cfg, log, wait_assigned=True, timeout=60):
    """Start `sluice worker -c cfg`, stderr to log; wait for its first assignment."""
    proc = subprocess.Popen([BIN, "worker", "-c", str(cfg)], stderr=open(log, "w"))
    w = Worker(proc, log)
    deadline = time.time() + timeout
    while wait_assigned and "assigned" not in w.log_text():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("worker did not get partitions:\n" + w.log_text()[-3000:])
        time.sleep(0.1)
    return w


@pytest.fixture(scope="module")
def worker(bootstrap, topics, tmp_path_factory):
    d = tmp_path_factory.mktemp("worker")
    w = start_worker(worker_config(d / "worker.cfg", bootstrap, topics), d / "worker.log")
    yield w
    if w.proc.poll() is None:
        w.stop()


def read_all(bootstrap, topic, expect=None, idle=3.0, timeout=120.0):
    """Every message of a topic from the beginning (all partitions).

    With expect: until that many arrived (then 1 s more, to see duplicates) or timeout.
    Without: until no message came for idle seconds.
    """
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    out, start = [], time.time()
    last = start
    while True:
        m = c.poll(0.2)
        now = time.time()
        if m is not None and not m.error():
            out.append(m)
            last = now
            continue
        if expect is not None:
            if (len(out) >= expect and now - last > 1.0) or now - start > timeout:
                break
        elif now - last > idle:
            break
    c.close()
    return out


def producer(bootstrap):
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
