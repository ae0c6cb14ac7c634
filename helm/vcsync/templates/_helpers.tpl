{{/*
Names. The virtual cluster is named after the release: the API Service is
<release> (vcsync run --api-service defaults to --name, and tenant pods find
their API through it), the syncer's managed-by label is <release>.
*/}}
{{- define "vcsync.name" -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" .Release.Name) -}}
{{- fail (printf "release name %q: must start with a letter (it names the API Service, a DNS-1035 label)" .Release.Name) -}}
{{- end -}}
{{- if gt (len .Release.Name) 52 -}}
{{- fail (printf "release name %q: at most 52 characters (StatefulSet pods get a suffix)" .Release.Name) -}}
{{- end -}}
{{- .Release.Name -}}
{{- end -}}

{{- define "vcsync.serviceAccountName" -}}vc-{{ include "vcsync.name" . }}{{- end -}}
{{- define "vcsync.headlessName" -}}{{ include "vcsync.name" . }}-headless{{- end -}}
{{- define "vcsync.certsSecretName" -}}{{ include "vcsync.name" . }}-certs{{- end -}}
{{- define "vcsync.kubeconfigSecretName" -}}{{ .Values.exportKubeConfig.secret.name | default (printf "vc-%s" (include "vcsync.name" .)) }}{{- end -}}
{{- define "vcsync.clusterRoleName" -}}vc-{{ include "vcsync.name" . }}-v-{{ .Release.Namespace }}{{- end -}}
{{- define "vcsync.leaseName" -}}vcsync-{{ include "vcsync.name" . }}{{- end -}}

{{- define "vcsync.selectorLabels" -}}
app.kubernetes.io/name: vcsync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: control-plane
{{- end -}}

{{- define "vcsync.labels" -}}
app.kubernetes.io/name: vcsync
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* registry/repository:tag, with the tag defaulting to the second argument. */}}
{{- define "vcsync.image" -}}
{{- $image := index . 0 -}}
{{- $tag := $image.tag | default (index . 1) -}}
{{- if $image.registry -}}{{ $image.registry }}/{{- end -}}{{ $image.repository }}:{{ $tag }}
{{- end -}}

{{/*
The backing store: database-embedded (kine + SQLite, the default when nothing
is enabled, as in vCluster), database-external (kine in front of PostgreSQL,
MySQL ...), etcd-embedded (an etcd container in every control-plane pod) or
etcd-external. More than one enabled is an error.
*/}}
{{- define "vcsync.backingStore" -}}
{{- $bs := .Values.controlPlane.backingStore -}}
{{- $enabled := list -}}
{{- if $bs.database.embedded.enabled }}{{ $enabled = append $enabled "database.embedded" }}{{ end -}}
{{- if $bs.database.external.enabled }}{{ $enabled = append $enabled "database.external" }}{{ end -}}
{{- if $bs.etcd.embedded.enabled }}{{ $enabled = append $enabled "etcd.embedded" }}{{ end -}}
{{- if $bs.etcd.external.enabled }}{{ $enabled = append $enabled "etcd.external" }}{{ end -}}
{{- if gt (len $enabled) 1 -}}
{{- fail (printf "controlPlane.backingStore: enable at most one store, got %s" (join ", " $enabled)) -}}
{{- end -}}
{{- if $bs.database.external.enabled -}}
{{- if not (or $bs.database.external.dataSource $bs.database.external.existingSecret.name) -}}
{{- fail "controlPlane.backingStore.database.external: set dataSource or existingSecret.name (a Secret holding the data source)" -}}
{{- end -}}
database-external
{{- else if $bs.etcd.embedded.enabled -}}
etcd-embedded
{{- else if $bs.etcd.external.enabled -}}
{{- if not $bs.etcd.external.endpoint -}}
{{- fail "controlPlane.backingStore.etcd.external.endpoint: required when etcd.external is enabled" -}}
{{- end -}}
etcd-external
{{- else -}}
database-embedded
{{- end -}}
{{- end -}}

{{/* "true" when the StatefulSet gets a volumeClaimTemplate ("auto": only embedded stores need one). */}}
{{- define "vcsync.persistence" -}}
{{- $enabled := .Values.controlPlane.statefulSet.persistence.volumeClaim.enabled -}}
{{- $store := include "vcsync.backingStore" . -}}
{{- if eq (toString $enabled) "auto" -}}
{{- if has $store (list "database-embedded" "etcd-embedded") }}true{{ end -}}
{{- else if $enabled -}}true{{- end -}}
{{- end -}}

{{- define "vcsync.replicas" -}}
{{- $replicas := int .Values.controlPlane.statefulSet.highAvailability.replicas -}}
{{- if and (gt $replicas 1) (eq (include "vcsync.backingStore" .) "database-embedded") -}}
{{- fail "controlPlane.statefulSet.highAvailability.replicas > 1 needs a shared or replicated store: each replica would get its own SQLite file. Enable controlPlane.backingStore.etcd.embedded (3 replicas) or an external store" -}}
{{- end -}}
{{- $replicas -}}
{{- end -}}

{{/* "true" when the syncers elect a leader (several replicas, or asked for). */}}
{{- define "vcsync.leaderElect" -}}
{{- if or (gt (int (include "vcsync.replicas" .)) 1) .Values.syncer.leaderElection.enabled }}true{{ end -}}
{{- end -}}

{{/*
The syncer's config file: exactly the sections `vcsync run --config` reads
(syncer/config.py). Chart-only keys of `policies` stay out.
*/}}
{{- define "vcsync.syncerConfig" -}}
{{- $le := .Values.syncer.leaderElection -}}
{{- if not (and (gt (float64 $le.leaseDuration) (float64 $le.renewDeadline)) (gt (float64 $le.renewDeadline) (float64 $le.retryPeriod))) -}}
{{- fail (printf "syncer.leaderElection: need leaseDuration > renewDeadline > retryPeriod, got %v, %v, %v" $le.leaseDuration $le.renewDeadline $le.retryPeriod) -}}
{{- end -}}
{{- $syncer := deepCopy .Values.syncer -}}
{{- if include "vcsync.leaderElect" . -}}
{{- $_ := set $syncer.leaderElection "enabled" true -}}
{{- end -}}
{{- $policies := pick .Values.policies "podSecurityStandard" "priorityClasses" "runtimeClasses" "schedulers" "externalNames" -}}
{{- $config := dict "sync" .Values.sync "policies" $policies "syncer" $syncer "plugins" .Values.plugins -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Host names the API server's certificate must carry (the Service IP is added at pod start). */}}
{{- define "vcsync.apiServerDNSNames" -}}
{{- $name := include "vcsync.name" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list $name (printf "%s.%s" $name $ns) (printf "%s.%s.svc" $name $ns) (printf "%s.%s.svc.cluster.local" $name $ns) "localhost" "kubernetes" "kubernetes.default" "kubernetes.default.svc" "kubernetes.default.svc.cluster.local" -}}
{{- range .Values.controlPlane.certificates.extraSANs -}}
{{- if not (regexMatch "^[0-9.:]+$" .) }}{{ $names = append $names . }}{{ end -}}
{{- end -}}
{{- toJson $names -}}
{{- end -}}

{{- define "vcsync.apiServerIPs" -}}
{{- $ips := list "127.0.0.1" -}}
{{- range .Values.controlPlane.certificates.extraSANs -}}
{{- if regexMatch "^[0-9.:]+$" . }}{{ $ips = append $ips . }}{{ end -}}
{{- end -}}
{{- toJson $ips -}}
{{- end -}}

{{/* The peer URL of replica i of the embedded etcd (TLS between pods; loopback with one replica). */}}
{{- define "vcsync.etcdPeerHost" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%d.%s.%s.svc" (include "vcsync.name" $ctx) (index . 1) (include "vcsync.headlessName" $ctx) $ctx.Release.Namespace -}}
{{- end -}}

{{/* Environment variable Kubernetes sets in pods for the API Service (docker-link style). */}}
{{- define "vcsync.serviceHostEnv" -}}
{{- include "vcsync.name" . | upper | replace "-" "_" }}_SERVICE_HOST
{{- end -}}

{{/* A one-context kubeconfig authenticating with a bearer token. */}}
{{- define "vcsync.kubeconfig" -}}
apiVersion: v1
kind: Config
clusters:
  - name: {{ .context }}
    cluster:
      server: {{ .server }}
      certificate-authority-data: {{ .ca | b64enc }}
users:
  - name: {{ .context }}
    user:
      token: {{ .token }}
contexts:
  - name: {{ .context }}
    context:
      cluster: {{ .context }}
      user: {{ .context }}
current-context: {{ .context }}
{{- end }}

{{/* Go runtime settings of a control-plane container, the same as the local driver's
(syncer/local/footprint.py, which says why): small heaps and few Ps for idle tenants. */}}
{{- define "vcsync.goRuntimeEnv" -}}
{{- $env := dict
  "kube-apiserver" (dict "GOGC" "25" "GOMAXPROCS" "2")
  "kube-controller-manager" (dict "GOGC" "50" "GOMAXPROCS" "1")
  "kine" (dict "GOGC" "50" "GOMAXPROCS" "1") -}}
{{- range $k, $v := get $env . }}
- {name: {{ $k }}, value: {{ $v | quote }}}
{{- end }}
{{- end -}}
