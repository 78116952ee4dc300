#!/usr/bin/env python3
"""Writes sluice-dashboard.json, the Grafana dashboard over sluice's Prometheus metrics.

    python3 deploy/grafana/make_dashboard.py            # rewrite the JSON next to this file
    python3 deploy/grafana/make_dashboard.py --check    # exit 1 when the JSON is not current

The JSON is committed (import it in Grafana: Dashboards > New > Import, or provision it);
tests/deploy/validate.sh checks it is current, valid and covers the expected panels.
"""
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("sluice-dashboard.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
# Label filters every per-model query carries; `instance` selects worker pods.
MV = 'model=~"$model", version=~"$version", instance=~"$instance"'
INST = 'instance=~"$instance"'
RI = "$__rate_interval"

panels = []
_next_id = [1]


def _id():
    i = _next_id[0]
    _next_id[0] += 1
    return i


def row(title, y):
    panels.append({"id": _id(), "type": "row", "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def timeseries(title, desc, x, y, w, h, unit, targets, stack=False, min0=True):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
              "spanNulls": False, "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    defaults = {"unit": unit, "custom": custom}
    if min0:
        defaults["min"] = 0
    panels.append({
        "id": _id(), "type": "timeseries", "title": title, "description": desc, "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom",
                               "calcs": ["mean", "max", "lastNotNull"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(targets)],
    })


def stat(title, desc, x, y, w, h, unit, expr, legend="", thresholds=None, text_mode="value"):
    steps = thresholds or [{"color": "green", "value": None}]
    panels.append({
        "id": _id(), "type": "stat", "title": title, "description": desc, "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": text_mode,
                    "justifyMode": "auto", "orientation": "auto"},
        "targets": [target(expr, legend, "A")],
    })


def quantiles(metric, sel, by=""):
    grp = f"le{', ' + by if by else ''}"
    suffix = f" {{{{{by}}}}}" if by else ""
    return [(f"histogram_quantile({q}, sum by ({grp}) (rate({metric}_bucket{{{sel}}}[{RI}])))",
             f"p{int(q * 100)}{suffix}") for q in (0.5, 0.9, 0.99)]


# ---- Overview ------------------------------------------------------------------------------
row("Overview", 0)
stat("Requests / s", "Requests consumed per second, all workers.", 0, 1, 4, 4, "reqps",
     f"sum(rate(sluice_requests_total{{{MV}}}[{RI}]))")
stat("Responses / s", "Responses published per second (served and error responses).", 4, 1, 4, 4,
     "reqps", f"sum(rate(sluice_responses_total{{{MV}}}[{RI}]))")
stat("Error ratio", "Error responses / requests.", 8, 1, 4, 4, "percentunit",
     f"sum(rate(sluice_errors_total{{{MV}}}[{RI}])) / clamp_min(sum(rate(sluice_requests_total{{{MV}}}[{RI}])), 1e-9)",
     thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 0.001},
                 {"color": "red", "value": 0.01}])
stat("Consumer lag", "Messages not yet consumed, summed over the partitions of the requests topics.",
     12, 1, 4, 4, "short",
     f"sum(max by (topic, partition) (sluice_consumer_lag{{{INST}}}))",
     thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 10000},
                 {"color": "red", "value": 100000}])
stat("Backlog drain time", "Seconds the slowest worker needs to drain its backlog at its current rate.",
     16, 1, 4, 4, "s", f"max(sluice_backlog_drain_seconds{{{INST}}})",
     thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 60},
                 {"color": "red", "value": 600}])
stat("Online accuracy", "Correct predictions / labelled requests since start (requests carrying a label).",
     20, 1, 4, 4, "percentunit", f"avg(sluice_accuracy{{{MV}}})",
     thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0.8},
                 {"color": "green", "value": 0.9}])

# ---- Throughput and latency ----------------------------------------------------------------
row("Throughput and latency", 5)
timeseries("Throughput", "Requests consumed and responses published per second, by model version.",
           0, 6, 12, 8, "reqps", [
               (f"sum by (model, version) (rate(sluice_requests_total{{{MV}}}[{RI}]))",
                "requests {{model}} v{{version}}"),
               (f"sum by (model, version) (rate(sluice_responses_total{{{MV}}}[{RI}]))",
                "responses {{model}} v{{version}}")])
timeseries("Request latency p50 / p90 / p99",
           "Request timestamp to response acknowledged (sluice_request_latency_seconds).",
           12, 6, 12, 8, "s", quantiles("sluice_request_latency_seconds", MV))
timeseries("Queue time p50 / p90 / p99", "Time a request waits before its batch runs (sluice_queue_seconds).",
           0, 14, 12, 8, "s", quantiles("sluice_queue_seconds", INST))
timeseries("Inference time p50 / p90 / p99", "Engine time of one batch (sluice_inference_seconds).",
           12, 14, 12, 8, "s", quantiles("sluice_inference_seconds", INST))
timeseries("Batch size", "Requests per engine run: mean and p90, by model version.", 0, 22, 12, 8, "short", [
    (f"sum by (model, version) (rate(sluice_batch_size_sum{{{MV}}}[{RI}])) / "
     f"sum by (model, version) (rate(sluice_batch_size_count{{{MV}}}[{RI}]))", "mean {{model}} v{{version}}"),
    (f"histogram_quantile(0.9, sum by (le, model, version) (rate(sluice_batch_size_bucket{{{MV}}}[{RI}])))",
     "p90 {{model}} v{{version}}")])
timeseries("In flight and paused partitions", "Messages consumed but not yet acknowledged, and partitions "
           "paused by backpressure.", 12, 22, 12, 8, "short", [
               (f"sum by (instance) (sluice_in_flight_messages{{{INST}}})", "in flight {{instance}}"),
               (f"sum by (instance) (sluice_partitions_paused{{{INST}}})", "paused {{instance}}")])

# ---- Lag ------------------------------------------------------------------------------------
row("Consumer lag and backlog", 30)
timeseries("Consumer lag by partition", "Messages behind the end of each partition (max over workers, "
           "as a partition's old owner may still report it briefly after a rebalance).",
           0, 31, 12, 8, "short",
           [(f"max by (topic, partition) (sluice_consumer_lag{{{INST}}})", "{{topic}}[{{partition}}]")],
           stack=True)
timeseries("Backlog drain time", "Seconds each worker needs to drain its backlog at its current rate.",
           12, 31, 12, 8, "s",
           [(f"max by (instance) (sluice_backlog_drain_seconds{{{INST}}})", "{{instance}}")])

# ---- Errors ---------------------------------------------------------------------------------
row("Errors and dead letters", 39)
timeseries("Error responses by code", "InferenceError responses per second by code (BAD_REQUEST, SHAPE, "
           "DATATYPE, UNKNOWN_MODEL, MODEL, INTERNAL).", 0, 40, 12, 8, "reqps",
           [(f"sum by (code) (rate(sluice_errors_total{{{MV}}}[{RI}]))", "{{code}}")], stack=True)
timeseries("Dead letters by code", "Messages sent to the dead-letter topic per second by code (FRAMING, "
           "DECODE, ...).", 12, 40, 12, 8, "reqps",
           [(f"sum by (code) (rate(sluice_dead_letters_total{{{INST}}}[{RI}]))", "{{code}}")], stack=True)

# ---- Accuracy and models --------------------------------------------------------------------
row("Models and online accuracy", 48)
timeseries("Online accuracy", "Correct predictions / labelled requests, by model version (labels come with "
           "the requests).", 0, 49, 12, 8, "percentunit",
           [(f"avg by (model, version) (sluice_accuracy{{{MV}}})", "{{model}} v{{version}}")], min0=False)
timeseries("Models loaded", "1 when a model version is loaded and serving, per worker.", 12, 49, 6, 8, "short",
           [(f"sum by (model, version) (sluice_model_loaded{{{MV}}})", "{{model}} v{{version}}")])
stat("OpenBLAS core", "OpenBLAS kernel set in use (a generic core such as Prescott on an AVX2/AVX-512 CPU "
     "is several times slower).", 18, 49, 6, 8, "none",
     f"count by (core) (sluice_openblas_core_info{{{INST}}})", legend="{{core}}", text_mode="value_and_name")

# ---- Kafka client ---------------------------------------------------------------------------
row("Kafka client", 57)
timeseries("Rebalances", "Consumer-group rebalances seen by each worker (per 5 min).", 0, 58, 8, 8, "short",
           [(f"sum by (instance) (increase(sluice_rebalances_total{{{INST}}}[5m]))", "{{instance}}")])
timeseries("Offset commits / s", "Offset commits per second.", 8, 58, 16, 8, "ops",
           [(f"sum by (instance) (rate(sluice_commits_total{{{INST}}}[{RI}]))", "{{instance}}")])


def var(name, label, query, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": f"var-{name}"}, "definition": query,
            "refresh": 2, "includeAll": True, "multi": multi, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "sort": 1, "hide": 0, "options": []}


dashboard = {
    "title": "sluice",
    "uid": "sluice-worker",
    "description": "sluice inference workers: throughput, latency, consumer lag, batches, errors, "
                   "dead letters and online accuracy (deploy/grafana/make_dashboard.py).",
    "tags": ["sluice", "kafka", "inference"],
    "timezone": "browser",
    "editable": True,
    "graphTooltip": 1,
    "refresh": "30s",
    "schemaVersion": 39,
    "version": 1,
    "time": {"from": "now-1h", "to": "now"},
    "timepicker": {},
    "annotations": {"list": []},
    "links": [],
    "templating": {"list": [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
        var("model", "Model", "label_values(sluice_requests_total, model)"),
        var("version", "Version", 'label_values(sluice_requests_total{model=~"$model"}, version)'),
        var("instance", "Worker", "label_values(sluice_requests_total, instance)"),
    ]},
    "panels": panels,
}

text = json.dumps(dashboard, indent=2) + "\n"
if "--check" in sys.argv[1:]:
    if OUT.read_text() != text:
        sys.exit(f"{OUT} is not what {Path(__file__).name} writes: run it")
else:
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(panels)} panels)")
