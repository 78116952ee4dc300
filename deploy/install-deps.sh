#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, test and run sluice:
#   1. Debian packages (apt-get update only when one is missing),
#   2. a Python venv at <repo>/.venv on /usr/bin/python3 with --system-site-packages
#      (Debian's torch and numpy stay visible) plus pinned fastavro, confluent-kafka, pytest,
#      and onnxruntime + onnx (the engine's differential test and benchmark),
#   3. the deployment validators (deploy/install-deploy-tools.sh),
#   4. Apache Kafka's jars from Maven Central (deploy/kafka-local.sh fetch).
# Idempotent: every step that is already done is skipped, so a second run takes seconds.
# Runs as root (CI) or through sudo.
#
# Environment: SLUICE_VENV (<repo>/.venv), SLUICE_SKIP_KAFKA=1 (skip step 4),
#              SLUICE_CACHE_DIR (see deploy/kafka-local.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
venv=${SLUICE_VENV:-$repo/.venv}

# Debian packages. libopenblas0-serial: single-threaded OpenBLAS; the worker
# parallelises across requests itself.
apt_packages=(
  build-essential cmake pkg-config
  librdkafka-dev libavro-dev libopenblas-dev libopenblas0-serial libconfig-dev
  libprotobuf-c-dev protobuf-c-compiler zlib1g-dev libmicrohttpd-dev libjansson-dev
  libonnx-dev libonnx-testdata dataset-fashion-mnist
  python3-torch python3-numpy python3-venv python3-pip
  libcmocka-dev clang clang-format libclang-rt-14-dev libxxhash-dev
  maven openjdk-17-jre-headless
)

# PyPI packages for the venv, pinned.
pip_packages=(
  fastavro==1.13.1
  confluent-kafka==2.16.1
  pytest==9.2.0
  onnxruntime==1.31.1
  onnx==1.23.2
)
# Never let pip replace Debian's numpy (torch 1.13 from Debian is built against numpy 1.x).
pip_constraints='numpy<2'

say() { printf 'install-deps: %s\n' "$*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_all=$(now)

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  say "error: not root and no sudo" >&2
  exit 1
fi

# --- 1. Debian packages -------------------------------------------------------
t0=$(now)
missing=()
for p in "${apt_packages[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
  say "Debian packages installed in $(elapsed "$t0") s"
else
  say "Debian packages: all ${#apt_packages[@]} present"
fi

# --- 2. Python venv -----------------------------------------------------------
t0=$(now)
vpy="$venv/bin/python"
if [[ ! -x $vpy ]] || ! "$vpy" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null ||
   [[ $(readlink -f "$vpy") != $(readlink -f /usr/bin/python3) ]]; then
  say "creating venv $venv (/usr/bin/python3, --system-site-packages)"
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
constraints="$venv/constraints.txt"
[[ -f $constraints && $(cat "$constraints") == "$pip_constraints" ]] ||
  printf '%s\n' "$pip_constraints" >"$constraints"

# pip only runs when a pinned version is not already there.
need_pip=()
for spec in "${pip_packages[@]}"; do
  name=${spec%%==*} want=${spec#*==}
  have=$("$vpy" - "$name" <<'PY' 2>/dev/null || true
import sys
from importlib.metadata import version as dist_version
print(version(sys.argv[1]))
PY
)
  [[ $have == "$want" ]] || need_pip+=("$spec")
done
if ((${#need_pip[@]})); then
  say "pip installing into $venv: ${need_pip[*]}"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$vpy" -m pip install -q --constraint "$constraints" "${need_pip[@]}"
  say "pip done in $(elapsed "$t0") s"
else
  say "venv $venv: ${pip_packages[*]} present"
fi
# Check that Debian's torch and numpy are visible (numpy still 1.x) and that the pins import.
"$vpy" - <<'PY'
import importlib.util, os
import numpy, fastavro, confluent_kafka, pytest
from importlib.metadata import version as dist_version
assert numpy.__version__.startswith("1."), "numpy %s in the venv: expected Debian's 1.x" % numpy.__version__
spec = importlib.util.find_spec("torch")  # found, not imported: importing torch takes seconds
assert spec is not None, "torch not visible in the venv (python3-torch, --system-site-packages)"
print("install-deps: venv ok: numpy %s and torch %s from %s; fastavro %s, confluent-kafka %s (librdkafka %s), pytest %s"
      % (numpy.__version__, dist_version("torch"), os.path.dirname(os.path.dirname(numpy.__file__)),
         fastavro.__version__, confluent_kafka.__version__, confluent_kafka.libversion()[0], pytest.__version__))
PY

# --- 3. Deployment tools (shellcheck, hadolint, helm, kubectl-validate, CRDs) ---
"$here/install-deploy-tools.sh"

# --- 4. Kafka jars ------------------------------------------------------------
if [[ ${SLUICE_SKIP_KAFKA:-0} == 1 ]]; then
  say "SLUICE_SKIP_KAFKA=1: not fetching Kafka jars"
else
  "$here/kafka-local.sh" fetch
fi

say "done in $(elapsed "$t_all") s"
