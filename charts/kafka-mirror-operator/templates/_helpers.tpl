{{/* The operator's name: <release>-operator, or the release name when it already says so. */}}
{{- define "kafka-mirror.fullname" -}}
{{- if contains "operator" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kafka-mirror.serviceAccountName" -}}
{{- default (include "kafka-mirror.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Labels that select the operator's pods: never change them (a Deployment's selector is immutable). */}}
{{- define "kafka-mirror.selectorLabels" -}}
app.kubernetes.io/name: kafka-mirror-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kafka-mirror.labels" -}}
{{ include "kafka-mirror.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kafka-mirror
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kafka-mirror.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kafka-mirror.workerImage" -}}
{{- printf "%s:%s" .Values.workerImage.repository (default .Chart.AppVersion .Values.workerImage.tag) -}}
{{- end -}}

{{/* Several replicas without leader election would both write: refuse to render that. */}}
{{- define "kafka-mirror.checkReplicas" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: two operators without a Lease would both write" -}}
{{- end -}}
{{- end -}}
