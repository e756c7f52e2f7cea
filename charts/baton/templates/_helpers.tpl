{{/*
Names, labels and the TOML rendering shared by every template.
*/}}

{{/* The four services; each gets a Deployment, a Service and a PodDisruptionBudget. */}}
{{- define "baton.services" -}}
gateway worker scheduler reaper
{{- end }}

{{- define "baton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-<chart>`, or the release name when it already contains the chart name. */}}
{{- define "baton.fullname" -}}
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

{{/* Name of one service's objects: `<fullname>-<service>`. Call with (dict "ctx" $ "service" "worker"). */}}
{{- define "baton.componentName" -}}
{{- printf "%s-%s" (include "baton.fullname" .ctx | trunc 50 | trimSuffix "-") .service }}
{{- end }}

{{- define "baton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; with a "service" in the dict, also app.kubernetes.io/component. Call with (dict "ctx" $ "service" "worker"). */}}
{{- define "baton.labels" -}}
helm.sh/chart: {{ include "baton.chart" .ctx }}
{{ include "baton.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Values.image.tag | default .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: baton
{{- end }}

{{/* Selector labels: name, instance and (when given) component. */}}
{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .service }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{- define "baton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "baton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A listen address in the pod: listenHost and a port. Call with (dict "ctx" $ "port" 9460). */}}
{{- define "baton.listen" -}}
{{- printf "%s:%d" .ctx.Values.listenHost (int .port) }}
{{- end }}

{{- define "baton.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* `terminationGracePeriodSeconds` of a service: its drain grace rounded up to seconds, plus terminationGraceExtraSeconds. Call with (dict "ctx" $ "service" "worker"). */}}
{{- define "baton.terminationGrace" -}}
{{- $ms := int64 (index .ctx.Values .service).config.drain_grace_ms }}
{{- add (div (add $ms 999) 1000) .ctx.Values.terminationGraceExtraSeconds }}
{{- end }}

{{/* Whether the worker Deployment's replicas belong to an autoscaler (HPA or KEDA): "true" or "". */}}
{{- define "baton.workerAutoscaled" -}}
{{- if and .Values.worker.autoscaling.enabled .Values.worker.keda.enabled }}
{{- fail "worker.autoscaling.enabled and worker.keda.enabled are exclusive: KEDA manages its own HorizontalPodAutoscaler" }}
{{- end }}
{{- if or .Values.worker.autoscaling.enabled .Values.worker.keda.enabled }}true{{ end }}
{{- end }}

{{/* The required external endpoints, with a message saying what to set. */}}
{{- define "baton.brokers" -}}
{{- required "kafka.brokers is required: the bootstrap servers of your Kafka cluster (--set kafka.brokers=host:9092); this chart installs no Kafka" .Values.kafka.brokers }}
{{- end }}

{{- define "baton.redisFromSecret" -}}
{{- if and .Values.existingSecret.name (hasKey .Values.existingSecret.env "BATON_REDIS_URL") }}true{{ end }}
{{- end }}

{{/*
One TOML value: a string (JSON escapes are valid TOML basic-string escapes), a bool, an
integer (Helm reads numbers as floats: printed without exponent), a float, or an array of these.
*/}}
{{- define "baton.tomlValue" -}}
{{- if kindIs "string" . }}{{ toJson . }}
{{- else if kindIs "bool" . }}{{ . }}
{{- else if or (kindIs "slice" .) (kindIs "array" .) }}[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "baton.tomlValue" $v }}{{ end }}]
{{- else if or (kindIs "float64" .) (kindIs "float32" .) }}{{ if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) }}{{ . }}
{{- else }}{{ fail (printf "cannot write %v (%s) as a TOML value" . (kindOf .)) }}
{{- end }}
{{- end }}

{{/* `key = value` lines of a map, keys sorted. */}}
{{- define "baton.tomlKeys" -}}
{{- range $k := keys . | sortAlpha }}
{{ $k }} = {{ include "baton.tomlValue" (index $ $k) }}
{{- end }}
{{- end }}
