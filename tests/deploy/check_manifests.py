#!/usr/bin/env python3
"""Invariants of sluice's deployment files that a schema cannot see.

    check_manifests.py REPO WORKDIR [SLUICE_BIN]

WORKDIR holds the chart renders validate.sh made (helm-default.yaml, helm-full.yaml) and the
CRD cache copy (crds/keda_kafka_scaler.go.txt). Prints one line per check, "PASS name" or
"FAIL name: why", and writes each rendered sluice.cfg to WORKDIR/cfg-*.cfg for
`sluice config --check`. Exit status 0; validate.sh counts the lines.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

repo, work = Path(sys.argv[1]), Path(sys.argv[2])
sluice = sys.argv[3] if len(sys.argv) > 3 else ""

METRICS = """sluice_requests_total sluice_responses_total sluice_errors_total sluice_dead_letters_total
sluice_request_latency_seconds sluice_queue_seconds sluice_inference_seconds sluice_batch_size
sluice_consumer_lag sluice_backlog_drain_seconds sluice_model_loaded sluice_openblas_core_info
sluice_accuracy sluice_in_flight_messages sluice_partitions_paused sluice_rebalances_total
sluice_commits_total""".split()
HISTOGRAMS = {"sluice_request_latency_seconds", "sluice_queue_seconds", "sluice_inference_seconds",
              "sluice_batch_size"}
# Settings the manifests set that the HTTP server will read; reported, not failed, while the
# binary's reference does not list them yet.
PENDING_ENV = set()  # every SLUICE_* the manifests set is a known setting
PARTITIONS = 8


def out(ok, name, why=""):
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}")


def check(name, fn):
    try:
        why = fn()
    except Exception as e:  # a broken file is a failed check, not a crash
        why = f"{type(e).__name__}: {e}"
    out(not why, name, why or "")


def docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def by_kind(ds):
    got = {}
    for d in ds:
        got.setdefault(d["kind"], []).append(d)
    return got


def libconfig_value(text, group, name):
    """A scalar `name = value;` inside `group: { ... };` of a libconfig text (simple files)."""
    m = re.search(group + r"\s*[:=]\s*\{(.*?)\n\s*\};", text, re.S)
    if not m:
        return None
    body = re.sub(r"#[^\n]*", "", m.group(1))
    v = re.search(r"\b" + name + r"\s*[=:]\s*(\[[^\]]*\]|\"[^\"]*\"|[^;\s]+)\s*;", body)
    if not v:
        return None
    s = v.group(1)
    if s.startswith("["):
        return re.findall(r'"([^"]*)"', s)
    return s.strip('"')


# ---------------------------------------------------------------- one set of objects
def check_set(label, ds, keda_expected):
    k = by_kind(ds)

    def one(kind):
        assert len(k.get(kind, [])) == 1, f"expected one {kind}, found {len(k.get(kind, []))}"
        return k[kind][0]

    dep = one("Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "sluice")
    cm = one("ConfigMap")
    cfg = cm["data"]["sluice.cfg"]
    cfg_file = work / f"cfg-{label}.cfg"
    cfg_file.write_text(cfg)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]

    def selects(sel):
        return all(pod_labels.get(a) == b for a, b in sel.items())

    def probes():
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        if ports.get("http") != 9100:
            return f"container port 'http' is {ports.get('http')}, want 9100"
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                            ("startupProbe", "/healthz")):
            g = c.get(probe, {}).get("httpGet", {})
            if g.get("path") != path or g.get("port") not in ("http", 9100):
                return f"{probe} is {g}, want {path} on port http"
        return ""

    def security():
        psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
        if not (psc.get("runAsNonRoot") or sc.get("runAsNonRoot")):
            return "runAsNonRoot not set"
        if psc.get("runAsUser", sc.get("runAsUser")) != 10001:
            return "runAsUser is not the image's 10001"
        if sc.get("readOnlyRootFilesystem") is not True:
            return "readOnlyRootFilesystem is not true"
        if sc.get("allowPrivilegeEscalation") is not False:
            return "allowPrivilegeEscalation is not false"
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            return "capabilities not dropped"
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        if "/tmp" not in mounts:
            return "no writable /tmp volume with a read-only root filesystem"
        return ""

    def grace():
        drain = int(libconfig_value(cfg, "worker", "shutdown_timeout_ms") or 20000)
        g = pod.get("terminationGracePeriodSeconds", 30)
        if g * 1000 < drain + 5000:
            return f"terminationGracePeriodSeconds {g} s is not above shutdown_timeout_ms {drain} ms + 5 s"
        return ""

    def config_mount():
        vols = {v["name"]: v for v in pod["volumes"]}
        m = next((m for m in c["volumeMounts"] if m["mountPath"] == "/etc/sluice"), None)
        if not m:
            return "nothing mounted at /etc/sluice"
        if vols[m["name"]].get("configMap", {}).get("name") != cm["metadata"]["name"]:
            return "/etc/sluice is not the ConfigMap " + cm["metadata"]["name"]
        if c.get("args") != ["worker", "-c", "/etc/sluice/sluice.cfg"]:
            return f"args {c.get('args')}"
        return ""

    def anti_affinity():
        aa = pod.get("affinity", {}).get("podAntiAffinity", {})
        terms = aa.get("preferredDuringSchedulingIgnoredDuringExecution", [])
        if not terms:
            return "no preferred podAntiAffinity"
        sel = terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]
        return "" if selects(sel) else "anti-affinity selector does not match the pod labels"

    def pdb():
        p = one("PodDisruptionBudget")
        return "" if selects(p["spec"]["selector"]["matchLabels"]) else "PDB selector does not match the pods"

    def service():
        s = one("Service")
        if not selects(s["spec"]["selector"]):
            return "Service selector does not match the pods"
        if not any(p.get("name") == "http" and p.get("targetPort") == "http" for p in s["spec"]["ports"]):
            return "no port 'http' targeting the container's 'http'"
        return ""

    def env():
        names = [e["name"] for e in c.get("env", [])]
        if "SLUICE_WORKER_ID" not in names:
            return "SLUICE_WORKER_ID (the pod name) not set"
        if pod.get("enableServiceLinks") is not False:
            return "enableServiceLinks is not false (SLUICE_*_SERVICE_HOST variables)"
        if not sluice:
            return "no sluice binary to read the settings from"
        ref = subprocess.run([sluice, "config", "--reference"], capture_output=True, text=True,
                             check=True).stdout
        known = set(re.findall(r"`(SLUICE_[A-Z0-9_]+)`", ref))
        bad = [n for n in names if n.startswith("SLUICE_") and not n.startswith("SLUICE_KAFKA_")
               and n not in known and n not in PENDING_ENV]
        pending = [n for n in names if n in PENDING_ENV and n not in known]
        if pending:
            print(f"NOTE {label}: env {', '.join(pending)} not in this binary's reference yet "
                  "(the HTTP server's settings)")
        return f"unknown settings {bad}" if bad else ""

    def keda():
        so = k.get("ScaledObject", [])
        if not keda_expected:
            return "" if not so else "unexpected ScaledObject"
        return check_scaledobject(one("ScaledObject"), dep, cfg)

    for name, fn in (("probes", probes), ("security", security), ("grace>drain", grace),
                     ("config mount", config_mount), ("anti-affinity", anti_affinity),
                     ("pdb", pdb), ("service", service), ("env overrides", env), ("keda", keda)):
        check(f"{label}: {name}", fn)


def check_scaledobject(so, dep, cfg):
    spec = so["spec"]
    if spec["scaleTargetRef"]["name"] != dep["metadata"]["name"]:
        return "scaleTargetRef is not the Deployment"
    if spec["maxReplicaCount"] != PARTITIONS:
        return f"maxReplicaCount {spec['maxReplicaCount']} != partition count {PARTITIONS}"
    trig = [t for t in spec["triggers"] if t["type"] == "kafka"]
    if len(trig) != 1:
        return "want one kafka trigger"
    md = trig[0]["metadata"]
    if md.get("consumerGroup") != libconfig_value(cfg, "kafka", "group_id"):
        return f"consumerGroup {md.get('consumerGroup')} is not the worker's kafka.group_id"
    if md.get("topic") and md["topic"] not in (libconfig_value(cfg, "topics", "requests") or []):
        return f"topic {md['topic']} is not one of topics.requests"
    if not str(md.get("lagThreshold", "")).isdigit():
        return "lagThreshold missing"
    if str(md.get("allowIdleConsumers", "false")) != "false":
        return "allowIdleConsumers must stay false (replicas capped at the partition count)"
    scaler = work / "crds" / "keda_kafka_scaler.go.txt"
    names = set(re.findall(r'keda:"name=([A-Za-z]+)', scaler.read_text()))
    unknown = sorted(set(md) - names)
    return f"trigger metadata not read by KEDA's kafka scaler: {unknown}" if unknown else ""


# ---------------------------------------------------------------- the Dockerfile
def dockerfile():
    text = (repo / "deploy/docker/Dockerfile").read_text()
    lines = re.sub(r"\\\n", " ", text).splitlines()
    instr = [l.strip() for l in lines if l.strip() and not l.strip().startswith("#")]
    stages = [l for l in instr if l.upper().startswith("FROM ")]
    if len(stages) < 2 or not all("${DEBIAN_IMAGE}" in s or "debian:12-slim" in s for s in stages):
        return "want a multi-stage build on debian:12-slim"
    if "ARG DEBIAN_IMAGE=debian:12-slim" not in instr:
        return "ARG DEBIAN_IMAGE=debian:12-slim missing"
    last = instr[instr.index(stages[-1]):]
    if "USER 10001:10001" not in last:
        return "runtime stage does not run as USER 10001:10001"
    if 'ENTRYPOINT ["sluice"]' not in last:
        return 'ENTRYPOINT ["sluice"] missing'
    cmd = [l for l in last if l.startswith("CMD ")]
    if not cmd or json.loads(cmd[-1][4:]) != ["worker", "-c", "/etc/sluice/sluice.cfg"]:
        return "CMD is not worker -c /etc/sluice/sluice.cfg"
    for l in instr:
        if l.startswith("COPY ") and "--from=" not in l:
            for src in l.split()[1:-1]:
                if not (repo / src).exists():
                    return f"COPY source {src} does not exist"
    if any(re.search(r"-dev\b", l) for l in last if l.startswith("RUN ")):
        return "runtime stage installs -dev packages"
    return ""


# ---------------------------------------------------------------- the Grafana dashboard
EXPECTED_PANELS = ["Throughput", "Request latency p50 / p90 / p99", "Consumer lag by partition",
                   "Backlog drain time", "Batch size", "Error responses by code", "Dead letters by code",
                   "Online accuracy"]


def dashboard():
    d = json.loads((repo / "deploy/grafana/sluice-dashboard.json").read_text())
    panels = [p for p in d["panels"] if p["type"] != "row"]
    titles = [p["title"] for p in panels]
    missing = [t for t in EXPECTED_PANELS if t not in titles]
    if missing:
        return f"panels missing: {missing}"
    ids = [p["id"] for p in d["panels"]]
    if len(ids) != len(set(ids)):
        return "duplicate panel ids"
    cells = set()
    for p in d["panels"]:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            return f"panel {p['title']} wider than the grid"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    return f"panel {p['title']} overlaps another"
                cells.add((x, y))
    used = set()
    for p in panels:
        if not p.get("targets"):
            return f"panel {p['title']} has no query"
        for t in p["targets"]:
            e = t["expr"]
            if e.count("(") != e.count(")") or e.count("{") != e.count("}"):
                return f"unbalanced brackets in {e}"
            for m in re.findall(r"\b(sluice_[a-z_]+)", e):
                base = re.sub(r"_(bucket|sum|count)$", "", m) if m not in METRICS else m
                if base not in METRICS:
                    return f"unknown metric {m} in {p['title']}"
                if m.endswith("_bucket") and base not in HISTOGRAMS:
                    return f"{m}: {base} is not a histogram"
                used.add(base)
            if "_bucket" in e and "histogram_quantile" not in e:
                return f"bucket series outside histogram_quantile in {p['title']}"
            if "histogram_quantile" in e and "le" not in re.findall(r"by \(([^)]*)\)", e)[0].replace(" ", "").split(","):
                return f"histogram_quantile without 'by (le)' in {p['title']}"
    unused = sorted(set(METRICS) - used)
    if unused:
        return f"metrics on no panel: {unused}"
    q = [t["expr"] for p in panels for t in p["targets"] if "histogram_quantile" in t["expr"]
         and "sluice_request_latency_seconds" in t["expr"]]
    if sorted(re.search(r"histogram_quantile\(([0-9.]+)", e).group(1) for e in q) != ["0.5", "0.9", "0.99"]:
        return "latency panel does not show p50/p90/p99"
    r = subprocess.run([sys.executable, str(repo / "deploy/grafana/make_dashboard.py"), "--check"],
                       capture_output=True, text=True)
    return r.stderr.strip() if r.returncode else ""


# ---------------------------------------------------------------- the chart's README
def chart_readme():
    values = yaml.safe_load((repo / "deploy/helm/sluice/values.yaml").read_text())
    readme = (repo / "deploy/helm/sluice/README.md").read_text()
    keys = []
    for k, v in values.items():
        if isinstance(v, dict) and k not in ("config", "env", "resources", "podSecurityContext",
                                              "securityContext", "nodeSelector", "podAnnotations",
                                              "podLabels"):
            keys += [f"{k}.{s}" for s in v]
        else:
            keys.append(k)
    missing = [k for k in keys if f"`{k}`" not in readme]
    return f"values not documented in README.md: {missing}" if missing else ""


k8s = repo / "deploy/k8s"
raw = [d for f in sorted(k8s.glob("*.yaml")) for d in docs(f)] + docs(k8s / "keda/scaledobject.yaml")
check_set("k8s", raw, keda_expected=True)
check_set("helm default", docs(work / "helm-default.yaml"), keda_expected=False)
check_set("helm full", docs(work / "helm-full.yaml"), keda_expected=True)
check("dockerfile structure", dockerfile)
check("grafana dashboard", dashboard)
check("helm values documented", chart_readme)
