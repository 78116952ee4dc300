"""Delivery guarantees against the real broker: a SIGTERM mid-stream loses nothing and
duplicates nothing; kill -9 at random points loses nothing (at-least-once)."""
import json
import os
import random
import signal
import subprocess
import time

from conftest import BIN, SRC, make_topics, start_worker, worker_config

# CI counts; tests/integration/delivery_full.sh runs the full counts (100,000).
SCALE = float(os.environ.get("SLUICE_DELIVERY_SCALE", "1"))
KILLS = int(os.environ.get("SLUICE_DELIVERY_KILLS", "3"))

# Short session timeout so that a killed member's partitions move on quickly.
FAST_GROUP = 'session_timeout_ms = 6000; heartbeat_interval_ms = 1000;'


def produce(bootstrap, topic, n, rate):
    return subprocess.Popen([BIN, "produce", "-b", bootstrap, "-t", topic, "-n", str(n),
                             "--rate", str(rate), "--schema-dir", str(SRC / "schemas")],
                            cwd=SRC, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def collect(bootstrap, topic, n, timeout_ms=180000):
    r = subprocess.run([BIN, "collect", "-b", bootstrap, "-t", topic, "--expect", str(n),
                        "--timeout-ms", str(timeout_ms), "--json",
                        "--schema-dir", str(SRC / "schemas")],
                       cwd=SRC, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_sigterm_mid_stream_loses_and_duplicates_nothing(bootstrap, tmp_path):
    n = 12000
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t, kafka=FAST_GROUP)
    w = start_worker(cfg, tmp_path / "w1.log")
    p = produce(bootstrap, t["requests"], n, 3000)
    time.sleep(2.0)
    assert w.proc.poll() is None
    assert w.stop() == 0, w.log_text()[-3000:]          # SIGTERM: drain, commit, leave
    log1 = w.log_text()
    w = start_worker(cfg, tmp_path / "w2.log")
    assert p.wait(60) == 0, p.stdout.read()
    s = collect(bootstrap, t["responses"], n)
    w.stop()
    print(f"SIGTERM mid-stream: {s['unique']} unique of {n}, {s['duplicates']} duplicates")
    assert "draining" in log1 and "stopped" in log1
    assert s["unique"] == n, s
    assert s["duplicates"] == 0, s


def test_kill9_at_random_points_loses_nothing(bootstrap, tmp_path):
    n = int(20000 * SCALE)
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t, kafka=FAST_GROUP)
    rnd = random.Random(7)
    w = start_worker(cfg, tmp_path / "w0.log")
    p = produce(bootstrap, t["requests"], n, 2500)
    kills = 0
    for i in range(KILLS):
        time.sleep(rnd.uniform(0.5, 2.5) * SCALE ** 0.5)
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait()
        kills += 1
        w = start_worker(cfg, tmp_path / f"w{i + 1}.log")
    assert p.wait(120 * SCALE) == 0, p.stdout.read()
    s = collect(bootstrap, t["responses"], n, timeout_ms=int(240000 * SCALE))
    w.stop()
    print(f"kill -9 x{kills}: {s['unique']} unique of {n}, {s['duplicates']} duplicates")
    assert s["unique"] == n, s


def test_scale_1_2_3_1_while_streaming(bootstrap, tmp_path):
    """Cooperative-sticky rebalances as replicas come and go: nothing lost, and the
    duplicates (redelivered work) stay within the in-flight window."""
    n = 30000
    t = make_topics(requests_partitions=6)
    cfgs = [worker_config(tmp_path / f"w{i}.cfg", bootstrap, t, worker_id=f"w{i}",
                          kafka=FAST_GROUP) for i in range(3)]
    a = start_worker(cfgs[0], tmp_path / "a.log")
    p = produce(bootstrap, t["requests"], n, 2500)
    time.sleep(2)
    b = start_worker(cfgs[1], tmp_path / "b.log")
    time.sleep(2)
    c = start_worker(cfgs[2], tmp_path / "c.log")
    time.sleep(3)
    assert b.stop() == 0, b.log_text()[-3000:]
    time.sleep(2)
    assert c.stop() == 0, c.log_text()[-3000:]
    assert p.wait(120) == 0, p.stdout.read()
    s = collect(bootstrap, t["responses"], n)
    assert a.stop() == 0
    served = {name: w.log_text().count("assigned") for name, w in (("a", a), ("b", b), ("c", c))}
    print(f"scale 1->2->3->1: {s['unique']} unique of {n}, {s['duplicates']} duplicates, "
          f"assignments {served}")
    assert s["unique"] == n, s
    assert all(v >= 1 for v in served.values()), served  # every replica got partitions
    # At most the batches in flight at each of the 4 rebalances (32 per batch).
    assert s["duplicates"] <= 4 * 32 * 6, s


def test_exactly_once_kill9_no_duplicates(bootstrap, tmp_path):
    """delivery.guarantee = exactly_once: kill -9 at random points; a read_committed reader
    (librdkafka's default, as `sluice collect`) sees every id exactly once."""
    n = int(15000 * SCALE)
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t, kafka=FAST_GROUP,
                        extra='delivery: { guarantee = "exactly_once"; };')
    rnd = random.Random(11)
    w = start_worker(cfg, tmp_path / "w0.log")
    assert "transactional.id=sluice-it-worker" in w.log_text()
    p = produce(bootstrap, t["requests"], n, 2500)
    for i in range(KILLS):
        time.sleep(rnd.uniform(0.5, 2.0) * SCALE ** 0.5)
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait()
        w = start_worker(cfg, tmp_path / f"w{i + 1}.log")
    assert p.wait(120 * SCALE) == 0, p.stdout.read()
    s = collect(bootstrap, t["responses"], n, timeout_ms=int(240000 * SCALE))
    assert w.stop() == 0, w.log_text()[-3000:]
    print(f"exactly-once, kill -9 x{KILLS}: {s['unique']} unique of {n}, {s['duplicates']} duplicates "
          f"(read_committed)")
    assert s["unique"] == n, s
    assert s["duplicates"] == 0, s
