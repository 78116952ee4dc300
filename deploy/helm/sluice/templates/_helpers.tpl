{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full resource name: <release>-<chart> unless the release name already contains it. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/component: worker
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* One libconfig value: string (quoted, escaped), bool, integer, float or a list of them. */}}
{{- define "sluice.cfgValue" -}}
{{- if kindIs "slice" . -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "sluice.cfgValue" $v }}{{ end }}]
{{- else if kindIs "string" . -}}
"{{ . | replace "\\" "\\\\" | replace "\"" "\\\"" }}"
{{- else if kindIs "bool" . -}}
{{ . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else if kindIs "invalid" . -}}
{{ fail "sluice: a config value is null" }}
{{- else -}}
{{ . }}
{{- end -}}
{{- end }}

{{/* The whole libconfig file from .Values.config (groups of settings). */}}
{{- define "sluice.config" -}}
# sluice worker configuration, rendered by the Helm chart from .Values.config.
# `sluice config --reference` lists every setting; SLUICE_<GROUP>_<NAME> variables override it.
{{- range $group, $settings := .Values.config }}
{{- if kindIs "map" $settings }}
{{ $group }}: {
{{- range $name, $value := $settings }}
  {{ $name }} = {{ include "sluice.cfgValue" $value }};
{{- end }}
};
{{- else }}
{{ $group }} = {{ include "sluice.cfgValue" $settings }};
{{- end }}
{{- end }}
{{ end }}

{{/* Partition cap for KEDA. */}}
{{- define "sluice.maxReplicas" -}}
{{- $parts := int .Values.kafka.requestPartitions }}
{{- $max := $parts }}
{{- if not (kindIs "invalid" .Values.keda.maxReplicaCount) }}
{{- $max = int .Values.keda.maxReplicaCount }}
{{- end }}
{{- if gt $max $parts }}
{{- fail (printf "keda.maxReplicaCount %d > kafka.requestPartitions %d: the extra replicas would get no partition" $max $parts) }}
{{- end }}
{{- $max }}
{{- end }}

{{/* Fail when the drain budget does not fit in the grace period (5 s margin at least). */}}
{{- define "sluice.checkGrace" -}}
{{- $drain := 20000 }}
{{- if and .Values.config.worker (hasKey .Values.config.worker "shutdown_timeout_ms") }}
{{- $drain = int .Values.config.worker.shutdown_timeout_ms }}
{{- end }}
{{- if lt (mul (int .Values.terminationGracePeriodSeconds) 1000) (add $drain 5000) }}
{{- fail (printf "terminationGracePeriodSeconds %d must exceed config.worker.shutdown_timeout_ms %d ms by 5 s or more" (int .Values.terminationGracePeriodSeconds) $drain) }}
{{- end }}
{{- end }}
