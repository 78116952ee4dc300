#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1 for
# sluice's integration tests and local runs. Kafka's own jars come from Maven
# Central through deploy/kafka/pom.xml.
#
#   deploy/kafka-local.sh fetch                   resolve the jars into the cache (skipped when current)
#   deploy/kafka-local.sh start                   format storage, start, wait until metadata is served
#   deploy/kafka-local.sh stop                    SIGTERM (then SIGKILL) by PID, remove the data
#   deploy/kafka-local.sh restart [DOWN_SECONDS]  stop WITHOUT removing the data, stay down DOWN_SECONDS
#                                                 (default 0), start again on the same data and ports
#   deploy/kafka-local.sh status                  running or not; prints the bootstrap address
#   deploy/kafka-local.sh bootstrap               prints the bootstrap address only
#   deploy/kafka-local.sh random-uuid             prints a new cluster id, as kafka-storage random-uuid
#   deploy/kafka-local.sh create-topics T:P ...   create topics (idempotent), e.g. sluice.requests:4
#   deploy/kafka-local.sh list-topics             list topic names
#   deploy/kafka-local.sh run-class CLASS ARGS    run a Kafka class with the jars on the class path,
#                                                 e.g. org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
#
# Environment:
#   KAFKA_PORT (39092)            client listener, PLAINTEXT on 127.0.0.1
#   KAFKA_CONTROLLER_PORT (39093) KRaft controller listener
#   SLUICE_RUN_DIR (<repo>/run/kafka)     server.properties, data/, kafka.log, kafka.pid
#   SLUICE_CACHE_DIR (<repo>/.cache/kafka) lib/ with the jars, pom.sha256
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m)   broker JVM heap
#   KAFKA_START_TIMEOUT (60)      seconds to wait for readiness
#   KAFKA_AUTO_CREATE_TOPICS (true) auto.create.topics.enable
#   KAFKA_EXTRA_PROPS             extra server properties, one key=value per line
#   SLUICE_PYTHON (<repo>/.venv/bin/python) used for fast admin calls when it has
#                                 confluent_kafka; otherwise Kafka's TopicCommand (a JVM) is used
#   JAVA (java from JAVA_HOME or PATH), MVN (mvn)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
pom="$here/kafka/pom.xml"
port=${KAFKA_PORT:-39092}
cport=${KAFKA_CONTROLLER_PORT:-39093}
run_dir=${SLUICE_RUN_DIR:-$repo/run/kafka}
cache_dir=${SLUICE_CACHE_DIR:-$repo/.cache/kafka}
lib="$cache_dir/lib"
bootstrap="127.0.0.1:$port"
pid_file="$run_dir/kafka.pid"
log_file="$run_dir/kafka.log"
out_file="$run_dir/kafka.out"
data_dir="$run_dir/data"
props="$run_dir/server.properties"
timeout=${KAFKA_START_TIMEOUT:-60}
python=${SLUICE_PYTHON:-$repo/.venv/bin/python}
if [[ -n ${JAVA:-} ]]; then java=$JAVA
elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then java=$JAVA_HOME/bin/java
else java=java; fi
mvn=${MVN:-mvn}

say() { printf 'kafka-local: %s\n' "$*"; }
die() { printf 'kafka-local: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

pom_hash() { sha256sum "$pom" | cut -d' ' -f1; }

fetched() {
  [[ -f $cache_dir/pom.sha256 && "$(cat "$cache_dir/pom.sha256")" == "$(pom_hash)" ]] &&
    compgen -G "$lib/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
  if fetched; then
    say "jars already in $lib ($(ls "$lib" | wc -l) files)"
    return 0
  fi
  command -v "$mvn" >/dev/null || die "maven (mvn) not found; run deploy/install-deps.sh"
  say "resolving Kafka jars with Maven into $lib"
  local t0 tmp
  t0=$(now)
  mkdir -p "$cache_dir"
  tmp=$(mktemp -d "$cache_dir/lib.tmp.XXXXXX")
  if ! "$mvn" -B -ntp -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime >"$cache_dir/mvn.log" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$cache_dir/mvn.log" >&2
    die "maven could not resolve $pom (full output: $cache_dir/mvn.log)"
  fi
  rm -rf "$lib"
  mv "$tmp" "$lib"
  pom_hash >"$cache_dir/pom.sha256"
  say "fetched $(ls "$lib" | wc -l) jars ($(du -sh "$lib" | cut -f1)) in $(elapsed "$t0") s"
}

need_jars() { fetched || cmd_fetch; }

# JVM for short-lived tools: quick start, quiet logging.
tool_java() {
  "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$here/kafka/log4j2-tools.xml" \
    -cp "$lib/*" "$@"
}

running_pid() {
  # Prints the broker's PID when the PID file names a live kafka.Kafka process.
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

have_python_client() {
  [[ -x $python ]] && "$python" -c 'import confluent_kafka' 2>/dev/null
}

# Admin operations through confluent_kafka (fast) when the venv has it.
py_admin() {
  "$python" - "$bootstrap" "$@" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import KafkaException
bootstrap, op, args = sys.argv[1], sys.argv[2], sys.argv[3:]
a = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000})
if op == "ready":
    md = a.list_topics(timeout=3)
    sys.exit(0 if md.brokers and md.controller_id >= 0 else 1)
elif op == "list":
    for t in sorted(a.list_topics(timeout=10).topics):
        print(t)
elif op == "create":
    existing = a.list_topics(timeout=10).topics
    new = []
    for spec in args:
        name, parts = spec.rsplit(":", 1)
        if name in existing:
            have = len(existing[name].partitions)
            note = "" if have == int(parts) else f" (wanted {parts})"
            print(f"topic {name} exists with {have} partitions{note}")
        else:
            new.append(NewTopic(name, num_partitions=int(parts), replication_factor=1))
    rc = 0
    for name, f in (a.create_topics(new, operation_timeout=30) if new else {}).items():
        try:
            f.result()
            print(f"created topic {name}")
        except KafkaException as e:
            err = e.args[0]
            if err.name() == "TOPIC_ALREADY_EXISTS":
                print(f"topic {name} exists")
            else:
                print(f"failed to create {name}: {err}", file=sys.stderr)
                rc = 1
    sys.exit(rc)
PY
}

metadata_ready() {
  if have_python_client; then
    py_admin ready 2>/dev/null
  else
    tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list >/dev/null 2>&1
  fi
}

write_props() {
  cat >"$props" <<EOF
# generated by deploy/kafka-local.sh
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=${KAFKA_AUTO_CREATE_TOPICS:-true}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
  if [[ -n ${KAFKA_EXTRA_PROPS:-} ]]; then
    printf '%s\n' "$KAFKA_EXTRA_PROPS" >>"$props"
  fi
}

# A Kafka Uuid: 16 random bytes, URL-safe base64 without padding. Like Kafka's
# Uuid.randomUuid(), draw again when it starts with '-': the storage tool's
# argument parser would take such a cluster id for an option.
random_uuid() {
  local id=-
  while [[ $id == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  printf '%s\n' "$id"
}

cmd_start() {
  local pid t0
  if pid=$(running_pid); then
    say "already running (pid $pid)"
    say "bootstrap: $bootstrap"
    return 0
  fi
  command -v "$java" >/dev/null || die "java not found; run deploy/install-deps.sh"
  if port_open "$port" || port_open "$cport"; then
    die "port $port or $cport on 127.0.0.1 is taken by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
  fi
  need_jars
  t0=$(now)
  mkdir -p "$run_dir"
  rm -f "$pid_file"
  [[ -f $log_file ]] && mv -f "$log_file" "$log_file.prev"
  write_props
  if [[ ! -f $data_dir/meta.properties ]]; then
    rm -rf "$data_dir"
    local cluster_id
    cluster_id=$(random_uuid)
    say "formatting $data_dir (cluster id $cluster_id)"
    tool_java kafka.tools.StorageTool format --standalone \
      --cluster-id "$cluster_id" --config "$props" >"$run_dir/format.out" 2>&1 ||
      { cat "$run_dir/format.out" >&2; die "storage format failed"; }
  fi
  say "starting broker on $bootstrap (controller 127.0.0.1:$cport), log $log_file"
  # shellcheck disable=SC2086
  nohup "$java" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/kafka/log4j2-broker.xml" \
    -Dsluice.kafka.log="$log_file" \
    -cp "$lib/*" kafka.Kafka "$props" >"$out_file" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pid_file"
  local deadline=$((SECONDS + timeout))
  until port_open "$port" && metadata_ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "broker exited during start; last lines of its logs:" >&2
      tail -n 30 "$out_file" "$log_file" >&2 2>/dev/null || true
      rm -f "$pid_file"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      say "broker not ready after ${timeout} s; last lines of its logs:" >&2
      tail -n 30 "$out_file" "$log_file" >&2 2>/dev/null || true
      cmd_stop >&2
      exit 1
    fi
    sleep 0.3
  done
  say "ready in $(elapsed "$t0") s (pid $pid)"
  say "bootstrap: $bootstrap"
}

# Stop the broker process (SIGTERM, then SIGKILL after 30 s); the data stays.
stop_process() {
  local pid
  if pid=$(running_pid); then
    say "stopping broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "still running after 30 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    say "stopped"
  else
    say "not running"
  fi
  rm -f "$pid_file"
}

cmd_stop() {
  stop_process
  if [[ -d $data_dir ]]; then
    rm -rf "$data_dir"
    say "removed $data_dir (kept $log_file)"
  fi
}

# Broker faults for tests: the same data, topics, offsets and ports after the restart.
cmd_restart() {
  local down=${1:-0}
  [[ $down =~ ^[0-9]+([.][0-9]+)?$ ]] || die "usage: $0 restart [DOWN_SECONDS]"
  [[ -f $data_dir/meta.properties ]] || die "no broker data in $data_dir to restart on; use: $0 start"
  stop_process
  if [[ $down != 0 ]]; then
    say "staying down for $down s"
    sleep "$down"
  fi
  cmd_start
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    if port_open "$port"; then
      say "running (pid $pid), bootstrap: $bootstrap"
    else
      say "process $pid alive but port $port not answering (starting or stuck?)"
      return 1
    fi
  else
    say "not running"
    return 3
  fi
}

require_running() { running_pid >/dev/null || die "broker not running; use: $0 start"; }

cmd_create_topics() {
  (($# > 0)) || die "usage: $0 create-topics NAME:PARTITIONS ..."
  local spec
  for spec in "$@"; do
    [[ $spec =~ ^[A-Za-z0-9._-]+:[1-9][0-9]*$ ]] || die "bad topic spec '$spec' (want NAME:PARTITIONS)"
  done
  require_running
  if have_python_client; then
    py_admin create "$@"
  else
    need_jars
    for spec in "$@"; do
      tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
        --create --if-not-exists --topic "${spec%:*}" \
        --partitions "${spec##*:}" --replication-factor 1
      say "topic ${spec%:*} ok"
    done
  fi
}

cmd_list_topics() {
  require_running
  if have_python_client; then
    py_admin list
  else
    need_jars
    tool_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list
  fi
}

cmd_run_class() {
  (($# > 0)) || die "usage: $0 run-class CLASS [ARGS...]"
  need_jars
  tool_java "$@"
}

case ${1:-} in
  fetch) shift; cmd_fetch "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  restart) shift; cmd_restart "$@" ;;
  status) shift; cmd_status "$@" ;;
  bootstrap) echo "$bootstrap" ;;
  random-uuid) random_uuid ;;
  create-topics) shift; cmd_create_topics "$@" ;;
  list-topics) shift; cmd_list_topics "$@" ;;
  run-class) shift; cmd_run_class "$@" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
