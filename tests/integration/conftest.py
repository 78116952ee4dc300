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


# --- Helpers for the fault and backpressure tests (test_faults.py, test_backpressure.py) ---

def sluice_produce(bootstrap, topic, n, rate=0, extra=()):
    """`sluice produce` of n requests (rate 0 = as fast as possible), running in the background."""
    return subprocess.Popen([BIN, "produce", "-b", bootstrap, "-t", topic, "-n", str(n),
                             "--rate", str(rate), "--schema-dir", str(SRC / "schemas"), *extra],
                            cwd=SRC, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def sluice_collect(bootstrap, topic, n, timeout_ms=180000):
    """`sluice collect --expect n --json`: the summary (unique, duplicates, ...) as a dict."""
    import json
    r = subprocess.run([BIN, "collect", "-b", bootstrap, "-t", topic, "--expect", str(n),
                        "--timeout-ms", str(timeout_ms), "--json",
                        "--schema-dir", str(SRC / "schemas")],
                       cwd=SRC, capture_output=True, text=True)
    lines = r.stdout.strip().splitlines()
    assert lines, f"collect printed nothing (rc {r.returncode}): {r.stderr[-2000:]}"
    return json.loads(lines[-1])


def http_get(port, path, timeout=2.0):
    """(status, body) of GET http://127.0.0.1:port/path; (0, reason) when it cannot connect."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def free_tcp_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    """VmRSS of a process in kB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class OwnBroker:
    """A broker of the test's own (ports, run dir), for tests that stop or restart it and so
    must not use the session's broker. deploy/kafka-local.sh with KAFKA_PORT,
    KAFKA_CONTROLLER_PORT and SLUICE_RUN_DIR set."""

    def __init__(self, port, controller_port, run_dir):
        self.env = dict(os.environ, KAFKA_PORT=str(port), KAFKA_CONTROLLER_PORT=str(controller_port),
                        SLUICE_RUN_DIR=str(run_dir))
        self.bootstrap = f"127.0.0.1:{port}"
        self.run_dir = Path(run_dir)

    def kl(self, *args, check=True, **kw):
        return subprocess.run([str(KAFKA), *args], env=self.env, check=check, **kw)

    def start(self):
        self.kl("start")
        return self

    def restart(self, down_seconds):
        """`kafka-local.sh restart DOWN`: in the background; stop (data kept), wait, start."""
        return subprocess.Popen([str(KAFKA), "restart", str(down_seconds)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def running(self):
        return self.kl("status", check=False, capture_output=True).returncode == 0

    def stop(self):
        self.kl("stop", check=False, capture_output=True)

    def make_topics(self, requests_partitions=4):
        tag = uuid.uuid4().hex[:8]
        t = {"requests": f"ft-{tag}.requests", "responses": f"ft-{tag}.responses",
             "dead_letters": f"ft-{tag}.dead-letters", "metrics": f"ft-{tag}.metrics",
             "group": f"ft-{tag}"}
        self.kl("create-topics", f"{t['requests']}:{requests_partitions}", f"{t['responses']}:4",
                f"{t['dead_letters']}:1", f"{t['metrics']}:1", capture_output=True)
        return t
