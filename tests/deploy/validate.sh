#!/usr/bin/env bash
# Offline validation of everything under deploy/ (ctest deploy_validate, label unit):
#   - deploy/k8s manifests and the rendered Helm chart against the Kubernetes 1.30 API schemas
#     (kubectl-validate carries them) plus the KEDA ScaledObject / ServiceMonitor CRDs,
#   - helm lint, helm template (default values, every option on, refused values),
#   - the worker config in the ConfigMaps, the chart render and the image: `sluice config --check`,
#   - invariants a schema cannot see (tests/deploy/check_manifests.py): probes, security,
#     grace period > drain budget, selectors, KEDA cap = partition count, env names,
#   - the Dockerfile: hadolint, shellcheck of every RUN step, runtime packages cover the
#     libraries the binary links, build packages cover CMakeLists.txt's pkg-config modules,
#   - shellcheck of deploy/*.sh and tests/**/*.sh, the Grafana dashboard, the Python examples.
# Nothing is downloaded: the tools come from deploy/install-deploy-tools.sh; a missing tool is a
# FAIL naming that script. Prints one line per check and ends with "deploy: N passed, N failed".
#
#   tests/deploy/validate.sh [SLUICE_BIN]      (default: $SLUICE_BIN, else <repo>/build/sluice)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=${SLUICE_TOOLS_DIR:-$repo/.cache}
bin="$tools/bin"
sluice=${1:-${SLUICE_BIN:-$repo/build/sluice}}
kube_version=1.30
python=$repo/.venv/bin/python
[[ -x $python ]] || python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

pass() { printf 'PASS %s\n' "$1"; passed=$((passed + 1)); }
fail() { printf 'FAIL %s: %s\n' "$1" "$2"; failed=$((failed + 1)); }
# run NAME CMD...: PASS when CMD exits 0, else FAIL with the tail of its output.
run() {
  local name=$1 log="$work/log"
  shift
  if "$@" >"$log" 2>&1; then
    pass "$name"
  else
    fail "$name" "$(tail -n 15 "$log" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ' | cut -c1-1500)"
  fi
}
# refuse NAME PATTERN CMD...: PASS when CMD fails with PATTERN in its output.
refuse() {
  local name=$1 pattern=$2 log="$work/log"
  shift 2
  if "$@" >"$log" 2>&1; then
    fail "$name" "was accepted"
  elif grep -q -- "$pattern" "$log"; then
    pass "$name"
  else
    fail "$name" "failed without '$pattern': $(tail -n 5 "$log" | tr '\n' ' ')"
  fi
}
need() {
  if [[ -x $1 ]] || command -v "$1" >/dev/null 2>&1; then return 0; fi
  fail "tool $(basename "$1")" "not found; run deploy/install-deploy-tools.sh (nothing is downloaded at test time)"
  return 1
}

cd "$repo" || exit 1

# ---- tools ---------------------------------------------------------------------------------
have_kv=0 have_helm=0 have_hadolint=0 have_sc=0 have_crds=0 have_sluice=0
need "$bin/kubectl-validate" && have_kv=1
need "$bin/helm" && have_helm=1
need "$bin/hadolint" && have_hadolint=1
need shellcheck && have_sc=1
if [[ -f $tools/crds/keda.sh_scaledobjects.yaml && -f $tools/crds/monitoring.coreos.com_servicemonitors.yaml &&
      -f $tools/crds/keda_kafka_scaler.go.txt ]]; then
  have_crds=1
  mkdir -p "$work/crds"
  cp "$tools"/crds/*.yaml "$tools/crds/keda_kafka_scaler.go.txt" "$work/crds/"
else
  fail "CRDs" "not in $tools/crds; run deploy/install-deploy-tools.sh"
fi
if [[ -x $sluice ]]; then have_sluice=1; else fail "sluice binary" "$sluice not built"; fi
"$python" -c 'import yaml' 2>/dev/null || fail "python yaml" "$python has no PyYAML (Debian python3-yaml)"

kv() { "$bin/kubectl-validate" --version "$kube_version" --local-crds "$work/crds" "$@"; }

# ---- Kubernetes manifests ------------------------------------------------------------------
if ((have_kv && have_crds)); then
  for f in deploy/k8s/*.yaml deploy/k8s/keda/*.yaml deploy/k8s/prometheus/*.yaml; do
    run "kubectl-validate $f" kv "$f"
  done
fi

# ---- Helm chart ----------------------------------------------------------------------------
chart=deploy/helm/sluice
full=(--set keda.enabled=true --set serviceMonitor.enabled=true
      --set models.image=registry.example.com/sluice-models:1
      --set-string env.SLUICE_BATCH_MAX_SIZE=64
      --set 'extraEnv[0].name=SLUICE_KAFKA_SASL_PASSWORD'
      --set 'extraEnv[0].valueFrom.secretKeyRef.name=sluice-kafka'
      --set 'extraEnv[0].valueFrom.secretKeyRef.key=password')
if ((have_helm)); then
  helm() { "$bin/helm" "$@"; }
  render() { local out=$1; shift; helm template sluice "$chart" --kube-version "$kube_version.0" "$@" >"$out"; }
  run "helm lint --strict" helm lint --strict --kube-version "$kube_version.0" "$chart"
  run "helm lint --strict (all options)" helm lint --strict --kube-version "$kube_version.0" "$chart" "${full[@]}"
  run "helm template (default values)" render "$work/helm-default.yaml"
  run "helm template (keda, servicemonitor, models image, env)" render "$work/helm-full.yaml" "${full[@]}"
  refuse "helm refuses keda.maxReplicaCount > partitions" "would get no partition" \
    helm template sluice "$chart" --kube-version "$kube_version.0" --set keda.enabled=true --set keda.maxReplicaCount=9
  refuse "helm refuses a grace period shorter than the drain" "must exceed" \
    helm template sluice "$chart" --kube-version "$kube_version.0" --set terminationGracePeriodSeconds=20
  if ((have_kv && have_crds)); then
    [[ -s $work/helm-default.yaml ]] && run "kubectl-validate helm render (default values)" kv "$work/helm-default.yaml"
    [[ -s $work/helm-full.yaml ]] && run "kubectl-validate helm render (all options)" kv "$work/helm-full.yaml"
  fi
fi

# ---- invariants and rendered configs ------------------------------------------------------
if [[ -s $work/helm-default.yaml && -s $work/helm-full.yaml ]]; then
  while IFS= read -r line; do
    case $line in
      PASS\ *) pass "${line#PASS }" ;;
      FAIL\ *) rest=${line#FAIL }; fail "${rest%%: *}" "${rest#*: }" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done < <("$python" tests/deploy/check_manifests.py "$repo" "$work" "$( ((have_sluice)) && echo "$sluice")" 2>&1)
  if ((have_sluice)); then
    for cfg in "$work"/cfg-*.cfg; do
      [[ -f $cfg ]] || continue
      run "sluice config --check $(basename "$cfg")" "$sluice" config --check "$cfg"
    done
    # The image's config names the image's schema folder, /opt/sluice/schemas, which
    # the Dockerfile fills from schemas/: check it with that folder mapped back.
    run "sluice config --check sluice.cfg (image; schemas from schemas/)" \
      env SLUICE_CODEC_SCHEMA_DIR="$repo/schemas" "$sluice" config --check deploy/docker/sluice.cfg
    # --check loads the schemas as the worker will: a writer schema that cannot be
    # resolved against the reader's is refused before any replica starts.
    run "sluice config --check resolves a compatible writer schema (v2)" \
      env SLUICE_CODEC_REQUEST_WRITER_SCHEMA=schemas/examples/inference_request_v2.avsc \
      "$sluice" config --check "$work/cfg-k8s.cfg"
    refuse "sluice config --check refuses an incompatible writer schema" "cannot be resolved" \
      env SLUICE_CODEC_REQUEST_WRITER_SCHEMA=schemas/examples/inference_request_incompatible.avsc \
      "$sluice" config --check "$work/cfg-k8s.cfg"
    refuse "sluice config --check names a missing schema folder" "nowhere/inference_request.avsc" \
      env SLUICE_CODEC_SCHEMA_DIR=nowhere "$sluice" config --check "$work/cfg-k8s.cfg"
  fi
else
  fail "manifest invariants" "no chart render to check (helm missing or failing)"
fi

# ---- Dockerfile ----------------------------------------------------------------------------
dockerfile=deploy/docker/Dockerfile
((have_hadolint)) && run "hadolint $dockerfile" "$bin/hadolint" "$dockerfile"
# Every RUN step (continuations joined) into one script per stage, with the stage's SHELL options.
if ((have_sc)); then
  "$python" - "$dockerfile" "$work" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
steps, stage, shell = {}, -1, ["/bin/sh", "-c"]
for line in re.sub(r"\\\n", " ", text).splitlines():
    s = line.strip()
    if s.upper().startswith("FROM "):
        stage += 1
        shell = ["/bin/sh", "-c"]
        steps[stage] = {"shell": shell, "runs": []}
    elif s.upper().startswith("SHELL "):
        shell = json.loads(s[6:])
        steps[stage]["shell"] = shell
    elif s.upper().startswith("RUN "):
        steps[stage]["runs"].append(s[4:])
for n, st in steps.items():
    sh = st["shell"]
    opts = [a for a in sh[1:] if a != "-c"]
    with open(f"{sys.argv[2]}/dockerfile-stage{n}.sh", "w") as f:
        f.write(f"#!{sh[0]}\n")
        if opts:
            f.write(f"set {' '.join(opts)}\n")
        for r in st["runs"]:
            f.write(r + "\n")
PY
  for s in "$work"/dockerfile-stage*.sh; do
    [[ -f $s ]] && run "shellcheck $dockerfile RUN steps ($(basename "$s" .sh))" shellcheck -s bash "$s"
  done
fi

# Runtime stage packages (and their dependencies) must provide every library sluice needs.
runtime_pkgs() {
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$dockerfile" | awk '/^FROM /{stage++} {print stage "\t" $0}' |
    awk -F'\t' -v want="$1" '$1 == want && $2 ~ /apt-get install/ {print $2}' |
    sed 's/.*apt-get install[^&]*--no-install-recommends//; s/&&.*//' | tr ' ' '\n' | grep -E '^[a-z0-9][a-z0-9.+-]+$'
}
closure() { apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
              --no-replaces --no-enhances "$@" 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u; }
if ((have_sluice)); then
  check_runtime_libs() {
    local pkgs closure_list soname missing=() owners
    mapfile -t pkgs < <(runtime_pkgs 2)
    ((${#pkgs[@]})) || { echo "no packages found in the runtime stage"; return 1; }
    closure_list=$(closure "${pkgs[@]}")
    [[ -n $closure_list ]] || { echo "apt-cache knows none of: ${pkgs[*]} (run apt-get update)"; return 1; }
    while read -r soname; do
      owners=$(dpkg -S "*/$soname" 2>/dev/null | sed 's/: .*//; s/:[a-z0-9]*$//; s/, /\n/g' | sed 's/:[a-z0-9]*$//' | sort -u)
      [[ -n $owners ]] || { missing+=("$soname(no package)"); continue; }
      grep -qxF -f <(printf '%s\n' "$owners") <<<"$closure_list" || missing+=("$soname($(tr '\n' ' ' <<<"$owners"))")
    done < <(readelf -d "$sluice" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    ((${#missing[@]} == 0)) || { echo "not provided by the runtime packages: ${missing[*]}"; return 1; }
    echo "runtime packages ${pkgs[*]} provide every NEEDED library"
  }
  run "Dockerfile runtime packages provide every library sluice links" check_runtime_libs
fi
check_build_pkgs() {
  local pkgs closure_list mod pc owner missing=()
  mapfile -t pkgs < <(runtime_pkgs 1)
  closure_list=$(closure "${pkgs[@]}")
  while read -r mod; do
    pc=$(pkg-config --variable=pcfiledir "$mod" 2>/dev/null)/$mod.pc
    # Through alternatives (openblas.pc) when the link itself belongs to no package.
    owner=$(dpkg -S "$pc" 2>/dev/null || dpkg -S "$(readlink -f "$pc")" 2>/dev/null)
    owner=$(sed 's/:.*//' <<<"$owner" | head -n1)
    [[ -n $owner ]] || { missing+=("$mod(.pc not found here)"); continue; }
    grep -qx "$owner" <<<"$closure_list" || missing+=("$mod($owner)")
  done < <(sed -n 's/^pkg_check_modules([A-Z_]* REQUIRED IMPORTED_TARGET \([a-z0-9_+-]*\).*/\1/p' CMakeLists.txt)
  for f in /usr/include/onnx/onnx.proto /usr/bin/protoc-c; do
    owner=$(dpkg -S "$f" 2>/dev/null | sed 's/:.*//' | head -n1)
    grep -qx "$owner" <<<"$closure_list" || missing+=("$f($owner)")
  done
  ((${#missing[@]} == 0)) || { echo "build stage lacks: ${missing[*]}"; return 1; }
  echo "build packages cover every pkg-config module of CMakeLists.txt"
}
run "Dockerfile build packages cover CMakeLists.txt's modules" check_build_pkgs

# ---- shell scripts -------------------------------------------------------------------------
# Severity warning and above. tests/deploy/shellcheck-known.txt lists findings in files owned
# elsewhere ("path SCxxxx" per line) that are reported as KNOWN until fixed.
if ((have_sc)); then
  known=tests/deploy/shellcheck-known.txt
  mapfile -t scripts < <(ls deploy/*.sh tests/*.sh 2>/dev/null; find tests -mindepth 2 -name '*.sh' | sort)
  for s in "${scripts[@]}"; do
    codes=$(shellcheck -S warning -f gcc "$s" 2>&1 | sed -n 's/.*\[\(SC[0-9]*\)\]$/\1/p' | sort -u)
    if [[ -z $codes ]]; then
      pass "shellcheck $s"
      continue
    fi
    unknown=()
    for c in $codes; do grep -qx "$s $c" "$known" 2>/dev/null || unknown+=("$c"); done
    if ((${#unknown[@]})); then
      fail "shellcheck $s" "$(shellcheck -S warning -f gcc "$s" 2>&1 | head -n 5 | tr '\n' ' ')"
    else
      printf 'KNOWN shellcheck %s: %s (listed in %s; fix and remove the line)\n' "$s" "$(tr '\n' ' ' <<<"$codes")" "$known"
      pass "shellcheck $s (known findings only)"
    fi
  done
fi

# ---- Python examples -----------------------------------------------------------------------
run "python examples compile" "$python" -m py_compile deploy/examples/producer.py deploy/examples/read_responses.py

printf 'deploy: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
