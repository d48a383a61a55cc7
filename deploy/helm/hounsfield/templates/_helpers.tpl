{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "hounsfield.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "hounsfield.fullname" -}}
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

{{- define "hounsfield.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hounsfield.labels" -}}
helm.sh/chart: {{ include "hounsfield.chart" . }}
{{ include "hounsfield.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hounsfield.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hounsfield.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hounsfield.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hounsfield.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hounsfield.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* True ("true") when the index is PostgreSQL (a URL inline or in an existing Secret). */}}
{{- define "hounsfield.externalIndex" -}}
{{- if or .Values.index.existingSecret .Values.index.url }}true{{ end }}
{{- end }}

{{/* True when more than one server pod can run at once. */}}
{{- define "hounsfield.scaled" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* Refuse configurations that cannot work. Several server pods, or worker pods beside the
     server, share the index and the blobs: the embedded SQLite file and file blobs live in
     one pod's /data and no other pod can reach them. */}}
{{- define "hounsfield.validate" -}}
{{- $shared := list }}
{{- if include "hounsfield.scaled" . }}
{{- $shared = append $shared "several replicas (replicaCount > 1 or autoscaling)" }}
{{- end }}
{{- if .Values.workers.enabled }}
{{- $shared = append $shared "separate workers (workers.enabled)" }}
{{- end }}
{{- if $shared }}
{{- $who := join " and " $shared }}
{{- if not (include "hounsfield.externalIndex" .) }}
{{- fail (printf "%s need the index in PostgreSQL: set index.url or index.existingSecret" $who) }}
{{- end }}
{{- if or (not .Values.blobs.url) (hasPrefix "file:" .Values.blobs.url) (hasPrefix "memory:" .Values.blobs.url) }}
{{- fail (printf "%s need the blobs in object storage: set blobs.url to s3://, gs:// or az://" $who) }}
{{- end }}
{{- end }}
{{- if contains "?" (default "" .Values.blobs.url) }}
{{- fail "blobs.url must not carry a query string: credentials go in blobs.credentialsSecret" }}
{{- end }}
{{- end }}

{{/* True when more than one worker pod can run at once. */}}
{{- define "hounsfield.workersScaled" -}}
{{- if and .Values.workers.enabled (or .Values.workers.autoscaling.enabled (gt (int .Values.workers.replicaCount) 1)) }}true{{ end }}
{{- end }}

{{/* Name of the worker Deployment (and of its HPA and PDB). */}}
{{- define "hounsfield.workerName" -}}
{{- printf "%s-worker" (include "hounsfield.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/* ConfigMap data: the non-secret HOUNSFIELD_* settings. */}}
{{- define "hounsfield.configData" -}}
HOUNSFIELD_HOST: "0.0.0.0"
HOUNSFIELD_DATA_DIR: "/data"
HOUNSFIELD_HTTP_PORT: "8080"
HOUNSFIELD_DIMSE_PORT: "11112"
{{- with .Values.blobs.url }}
HOUNSFIELD_BLOB_URL: {{ . | quote }}
{{- end }}
{{- with .Values.blobs.s3.endpoint }}
AWS_ENDPOINT_URL: {{ . | quote }}
{{- end }}
{{- with .Values.blobs.s3.region }}
AWS_REGION: {{ . | quote }}
{{- end }}
{{- range $key, $value := .Values.config }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Environment of every Hounsfield container (server, workers and migrations Job). $cfg and
     $secret are the names of the ConfigMap and of the chart's Secret to read; an optional
     fourth element is a list of env entries for this container alone, placed before
     extraEnv (which therefore wins, the last duplicate being the one Kubernetes applies). */}}
{{- define "hounsfield.env" -}}
{{- $root := index . 0 }}
{{- $cfg := index . 1 }}
{{- $secret := index . 2 }}
{{- $own := list }}
{{- if gt (len .) 3 }}
{{- $own = index . 3 }}
{{- end -}}
envFrom:
  - configMapRef:
      name: {{ $cfg }}
  {{- with $root.Values.blobs.credentialsSecret }}
  - secretRef:
      name: {{ . }}
  {{- end }}
  {{- with $root.Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $env := include "hounsfield.envList" (list $root $secret $own) | trim }}
{{- if $env }}
env:
  {{- $env | nindent 2 }}
{{- end }}
{{- end }}

{{- define "hounsfield.envList" -}}
{{- $root := index . 0 }}
{{- $secret := index . 1 }}
{{- $own := index . 2 }}
{{- if $root.Values.index.existingSecret }}
- name: HOUNSFIELD_INDEX_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.index.existingSecret }}
      key: {{ $root.Values.index.existingSecretKey }}
{{- else if $root.Values.index.url }}
- name: HOUNSFIELD_INDEX_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: index-url
{{- end }}
{{- if $root.Values.bus.existingSecret }}
- name: HOUNSFIELD_BUS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.bus.existingSecret }}
      key: {{ $root.Values.bus.existingSecretKey }}
{{- else if $root.Values.bus.url }}
- name: HOUNSFIELD_BUS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: bus-url
{{- end }}
{{- if $root.Values.index.passwordSecret.name }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.index.passwordSecret.name }}
      key: {{ $root.Values.index.passwordSecret.key }}
{{- end }}
{{- with $own }}
{{ toYaml . }}
{{- end }}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The chart's own Secret holds the URLs given inline (they may carry credentials). */}}
{{- define "hounsfield.needsSecret" -}}
{{- if or (and .Values.index.url (not .Values.index.existingSecret)) (and .Values.bus.url (not .Values.bus.existingSecret)) }}true{{ end }}
{{- end }}

{{- define "hounsfield.secretData" -}}
{{- if and .Values.index.url (not .Values.index.existingSecret) }}
index-url: {{ .Values.index.url | quote }}
{{- end }}
{{- if and .Values.bus.url (not .Values.bus.existingSecret) }}
bus-url: {{ .Values.bus.url | quote }}
{{- end }}
{{- end }}
