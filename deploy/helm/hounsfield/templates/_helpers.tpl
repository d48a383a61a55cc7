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

{{/* Refuse configurations that cannot work. */}}
{{- define "hounsfield.validate" -}}
{{- if .Values.workers.enabled }}
{{- fail "workers.enabled needs a `hounsfield worker` command, which this version does not have: jobs run inside `hounsfield serve`" }}
{{- end }}
{{- if include "hounsfield.scaled" . }}
{{- if not (include "hounsfield.externalIndex" .) }}
{{- fail "several replicas (replicaCount > 1 or autoscaling) need the index in PostgreSQL: set index.url or index.existingSecret" }}
{{- end }}
{{- if or (not .Values.blobs.url) (hasPrefix "file:" .Values.blobs.url) (hasPrefix "memory:" .Values.blobs.url) }}
{{- fail "several replicas (replicaCount > 1 or autoscaling) need the blobs in object storage: set blobs.url to s3://, gs:// or az://" }}
{{- end }}
{{- end }}
{{- if contains "?" (default "" .Values.blobs.url) }}
{{- fail "blobs.url must not carry a query string: credentials go in blobs.credentialsSecret" }}
{{- end }}
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

{{/* Environment of every Hounsfield container (server and migrations Job). $cfg and $secret
     are the names of the ConfigMap and of the chart's Secret to read. */}}
{{- define "hounsfield.env" -}}
{{- $root := index . 0 }}
{{- $cfg := index . 1 }}
{{- $secret := index . 2 -}}
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
{{- $env := include "hounsfield.envList" (list $root $secret) | trim }}
{{- if $env }}
env:
  {{- $env | nindent 2 }}
{{- end }}
{{- end }}

{{- define "hounsfield.envList" -}}
{{- $root := index . 0 }}
{{- $secret := index . 1 }}
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
