"""Broker faults against a real broker: the broker is stopped mid-stream and started again on
the same data and ports. The worker recovers by itself (same process), every request gets a
response, and /healthz reports 503 while it cannot make progress, 200 once it does again.

The test runs a broker of its own (ports 39592/39593 unless SLUICE_FAULT_KAFKA_PORT /
SLUICE_FAULT_KAFKA_CONTROLLER_PORT say otherwise, a temporary run dir), never the session's."""
import os
import tempfile
import time

import pytest

from conftest import (OwnBroker, free_tcp_port, http_get, sluice_collect, sluice_produce,
                      start_worker, worker_config)

PORT = int(os.environ.get("SLUICE_FAULT_KAFKA_PORT", "39592"))
CPORT = int(os.environ.get("SLUICE_FAULT_KAFKA_CONTROLLER_PORT", "39593"))


@pytest.fixture
def own_broker():
    run_dir = tempfile.mkdtemp(prefix="sluice-fault-kafka.")
    b = OwnBroker(PORT, CPORT, run_dir).start()
    yield b
    b.stop()
    import shutil
    shutil.rmtree(run_dir, ignore_errors=True)


def test_broker_restart_mid_stream(own_broker, tmp_path):
    n, rate, down_s = 20000, 2000, 5
    b = own_broker
    t = b.make_topics()
    http_port = free_tcp_port()
    cfg = worker_config(tmp_path / "w.cfg", b.bootstrap, t,
                        extra=f'http: {{ port = {http_port}; bind_address = "127.0.0.1"; '
                              f'liveness_timeout_ms = 3000; }};')
    w = start_worker(cfg, tmp_path / "w.log")
    p = None
    try:
        assert http_get(http_port, "/healthz")[0] == 200
        p = sluice_produce(b.bootstrap, t["requests"], n, rate)
        time.sleep(3.0)
        assert w.proc.poll() is None, w.log_text()[-3000:]

        # Stop the broker (data kept), stay down, start it again; watch /healthz meanwhile.
        t0 = time.time()
        r = b.restart(down_s)
        seen = []  # (seconds since the stop began, status, reason)
        while r.poll() is None:
            status, body = http_get(http_port, "/healthz")
            seen.append((round(time.time() - t0, 1), status, body.strip()[:120]))
            time.sleep(0.2)
        restart_out = r.stdout.read()
        assert r.returncode == 0, restart_out
        up_at = time.time() - t0
        # After the broker is back: the worker reports healthy again by itself.
        deadline = time.time() + 90
        while True:
            status, body = http_get(http_port, "/healthz")
            seen.append((round(time.time() - t0, 1), status, body.strip()[:120]))
            if status == 200 and seen[-2][1] != 503 or time.time() > deadline:
                break
            time.sleep(0.2)

        assert p.wait(180) == 0, p.stdout.read()
        s = sluice_collect(b.bootstrap, t["responses"], n, timeout_ms=120000)
        assert w.proc.poll() is None, "the worker exited:\n" + w.log_text()[-3000:]
        # Healthy once everything is answered (nothing owed, loop turning).
        final = http_get(http_port, "/healthz")
        log = w.log_text()
        assert w.stop() == 0, log[-3000:]

        statuses = [x[1] for x in seen]
        first_503 = next((x for x in seen if x[1] == 503), None)
        last_503 = next((x for x in reversed(seen) if x[1] == 503), None)
        recovered = next((x for x in seen if last_503 and x[0] > last_503[0] and x[1] == 200),
                         None)
        print(f"\nbroker restart mid-stream: broker down+up took {up_at:.1f} s; "
              f"{s['unique']} unique of {n}, {s['duplicates']} duplicates; "
              f"/healthz: {statuses.count(200)}x200 {statuses.count(503)}x503 "
              f"{statuses.count(0)}xno-answer; first 503 at {first_503}, "
              f"last 503 at {last_503}, 200 again at {recovered}; final {final[0]}; "
              f"KAFKA warnings {log.count('fac=KAFKA')}")
        assert s["unique"] == n, s
        assert final[0] == 200, final
        assert 0 not in statuses, [x for x in seen if x[1] == 0][:5]  # the HTTP thread kept up
        # Messages were in flight when the broker went away: no acknowledgement for longer
        # than liveness_timeout_ms must show as 503 (the broker was down >= down_s s).
        assert first_503 is not None, seen
        assert "no acknowledgement from the broker" in first_503[2], first_503
        assert recovered is not None, seen
        assert "fatal" not in log, log[-3000:]
    finally:
        if p and p.poll() is None:
            p.kill()
        if w.proc.poll() is None:
            w.proc.kill()
