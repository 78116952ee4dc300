"""Fixtures for the Python-ecosystem interop tests: the local Kafka broker (started and stopped
here unless one already runs), fresh topics, and a sluice worker per wire framing.

The same pattern as tests/integration/conftest.py; the broker is deploy/kafka-local.sh's
(KAFKA_PORT, SLUICE_RUN_DIR select another instance)."""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

SRC = Path(os.environ.get("SLUICE_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BIN = os.environ.get("SLUICE_BIN", str(SRC / "build" / "sluice"))
KAFKA = SRC / "deploy" / "kafka-local.sh"
EXAMPLES = SRC / "deploy" / "examples"
PYTHON = sys.executable


@pytest.fixture(scope="session")
def bootstrap():
    status = subprocess.run([str(KAFKA), "status"], capture_output=True, text=True)
    started = status.returncode != 0
    if started:
        subprocess.run([str(KAFKA), "start"], check=True)
    addr = subprocess.run([str(KAFKA), "bootstrap"], check=True, capture_output=True,
                          text=True).stdout.strip()
    yield addr
    if started:
        subprocess.run([str(KAFKA), "stop"], check=False)


def make_topics(prefix):
    tag = f"{prefix}-{uuid.uuid4().hex[:8]}"
    t = {"requests": f"{tag}.requests", "responses": f"{tag}.responses",
         "dead_letters": f"{tag}.dead-letters", "metrics": f"{tag}.metrics", "group": tag}
    subprocess.run([str(KAFKA), "create-topics", f"{t['requests']}:4", f"{t['responses']}:4",
                    f"{t['dead_letters']}:1", f"{t['metrics']}:1"], check=True)
    return t


class Worker:
    """`sluice worker` on its own topics with the given codec.framing; stopped with SIGTERM."""

    def __init__(self, bootstrap, framing, tmp, codec_extra=""):
        """codec_extra: more settings for the codec group (e.g. writer_schemas = [...];)."""
        self.topics = make_topics(f"interop-{framing}")
        t = self.topics
        cfg = tmp / f"worker-{framing}.cfg"
        cfg.write_text(f"""
worker: {{ id = "interop-{framing}"; models_dir = "{SRC / 'models'}"; metrics_interval_ms = 2000; }};
batch: {{ max_size = 32; max_wait_ms = 5; }};
topics: {{
  requests = ["{t['requests']}"];
  responses = "{t['responses']}";
  dead_letters = "{t['dead_letters']}";
  metrics = "{t['metrics']}";
}};
codec: {{ framing = "{framing}"; schema_dir = "{SRC / 'schemas'}";
          request_schema_id = 1; response_schema_id = 2; {codec_extra} }};
kafka: {{ bootstrap_servers = "{bootstrap}"; group_id = "{t['group']}"; }};
""")
        self.log = tmp / f"worker-{framing}.log"
        self.proc = subprocess.Popen([BIN, "worker", "-c", str(cfg)], stderr=open(self.log, "w"))
        deadline = time.time() + 60
        while "assigned" not in self.log_text():
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"{framing} worker did not get partitions:\n" + self.log_text()[-3000:])
            time.sleep(0.2)

    def log_text(self):
        return Path(self.log).read_text(errors="replace")

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


@pytest.fixture(scope="module", params=["raw", "confluent"])
def worker(request, bootstrap, tmp_path_factory):
    w = Worker(bootstrap, request.param, tmp_path_factory.mktemp(f"worker-{request.param}"))
    w.framing = request.param
    yield w
    rc = w.stop()
    assert rc == 0, f"worker exited {rc}:\n" + w.log_text()[-3000:]
