{{/* The name of every object: the release's, with the chart's name unless it has it. */}}
{{- define "agenttrail.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels that select one component's pods; call with (list $ "ingest"). */}}
{{- define "agenttrail.selector" -}}
app.kubernetes.io/name: {{ (index . 0).Chart.Name }}
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Every label of one component's objects; call with (list $ "ingest"). */}}
{{- define "agenttrail.labels" -}}
{{ include "agenttrail.selector" . }}
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: {{ printf "%s-%s" (index . 0).Chart.Name (index . 0).Chart.Version }}
{{- end -}}

{{/* The Secret holding the store's password, or "" when there is none. */}}
{{- define "agenttrail.storeSecret" -}}
{{- if .Values.store.existingSecret -}}
{{- .Values.store.existingSecret -}}
{{- else if .Values.store.password -}}
{{- include "agenttrail.fullname" . }}-store
{{- end -}}
{{- end -}}

{{/*
One component's Deployment: call with (dict "root" $ "component" "ingest"
"role" "ingest" "replicas" 2 "resources" {...} "data" <the /data volume>
"strategy" {...} "signingKey" <true on the nodes that sign checkpoints>).
*/}}
{{- define "agenttrail.deployment" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "agenttrail.fullname" $root }}-{{ .component }}
  labels:
    {{- include "agenttrail.labels" (list $root .component) | nindent 4 }}
spec:
  replicas: {{ .replicas }}
  {{- with get . "strategy" }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "agenttrail.selector" (list $root .component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "agenttrail.labels" (list $root .component) | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      # serve stops on SIGTERM: it answers the requests in flight and
      # commits what it accepted (up to 25 s) before it exits.
      terminationGracePeriodSeconds: 40
      containers:
        - name: agenttrail
          image: "{{ $root.Values.image.repository }}:{{ $root.Values.image.tag | default $root.Chart.AppVersion }}"
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["serve", "--config", "/etc/agenttrail/agenttrail.yaml", "--role", {{ .role | quote }}
            {{- if get . "signingKey" }}, "--signing-key", "/etc/agenttrail-signing/signing.key"{{ end }}]
          ports:
            - name: http
              containerPort: {{ $root.Values.port }}
              protocol: TCP
          {{- $secret := include "agenttrail.storeSecret" $root }}
          {{- if and $secret (ne .role "all") }}
          env:
            # The store URL has no password: the PostgreSQL driver takes it from here.
            - name: PGPASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $root.Values.store.passwordKey }}
          {{- end }}
          startupProbe:
            httpGet: {path: /livez, port: http}
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /livez, port: http}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - name: config
              mountPath: /etc/agenttrail
              readOnly: true
            - name: data
              mountPath: /data
            {{- if get . "signingKey" }}
            - name: signing-key
              mountPath: /etc/agenttrail-signing
              readOnly: true
            {{- end }}
            # The root file system is read-only; export bundles are built in /tmp.
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: config
          configMap:
            name: {{ include "agenttrail.fullname" $root }}-config
        - name: data
          {{- toYaml .data | nindent 10 }}
        - name: tmp
          emptyDir: {}
        {{- if get . "signingKey" }}
        # The checkpoints' signing key, from a Secret: never in the database.
        - name: signing-key
          secret:
            secretName: {{ $root.Values.signingKey.existingSecret }}
            items:
              - key: {{ $root.Values.signingKey.key }}
                path: signing.key
            defaultMode: 0440
        {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* One component's Service: call with (list $ "ingest"). */}}
{{- define "agenttrail.service" -}}
{{- $root := index . 0 -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "agenttrail.fullname" $root }}-{{ index . 1 }}
  labels:
    {{- include "agenttrail.labels" . | nindent 4 }}
spec:
  type: {{ $root.Values.service.type }}
  selector:
    {{- include "agenttrail.selector" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $root.Values.port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* One component's PodDisruptionBudget: call with (list $ "ingest" <its pdb values>). */}}
{{- define "agenttrail.pdb" -}}
{{- $root := index . 0 -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "agenttrail.fullname" $root }}-{{ index . 1 }}
  labels:
    {{- include "agenttrail.labels" (list $root (index . 1)) | nindent 4 }}
spec:
  {{- toYaml (index . 2) | nindent 2 }}
  selector:
    matchLabels:
      {{- include "agenttrail.selector" (list $root (index . 1)) | nindent 6 }}
{{- end -}}
