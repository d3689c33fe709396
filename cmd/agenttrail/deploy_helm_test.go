package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/agenttrail/agenttrail/app"
)

var chartDir = filepath.Join("..", "..", "deploy", "helm", "agenttrail")

// manifests are the Kubernetes objects a chart renders, each decoded
// strictly into its type, by name.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	pvcs        map[string]*corev1.PersistentVolumeClaim
}

// decodeManifest decodes one YAML document into the k8s.io/api type of its
// apiVersion and kind, refusing any field that type does not have (and a
// kind the chart is not expected to make).
func (m *manifests) decodeManifest(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var err error
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		err = decodeStrict(doc, m.deployments)
	case "v1 Service":
		err = decodeStrict(doc, m.services)
	case "policy/v1 PodDisruptionBudget":
		err = decodeStrict(doc, m.pdbs)
	case "v1 ConfigMap":
		err = decodeStrict(doc, m.configMaps)
	case "v1 Secret":
		err = decodeStrict(doc, m.secrets)
	case "v1 PersistentVolumeClaim":
		err = decodeStrict(doc, m.pvcs)
	default:
		return fmt.Errorf("unexpected kind %q of apiVersion %q", tm.Kind, tm.APIVersion)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return nil
}

// decodeStrict decodes doc into a new T, refusing unknown and duplicate
// fields, and files it under its name.
func decodeStrict[T any, P interface {
	*T
	GetName() string
}](doc []byte, into map[string]*T) error {
	o := new(T)
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		return err
	}
	name := P(o).GetName()
	if name == "" {
		return errors.New("no name")
	}
	into[name] = o
	return nil
}

// renderChart renders deploy/helm/agenttrail with Helm's own loader, values
// and engine, as `helm install trail` with set over values.yaml, and
// decodes every document it makes.
func renderChart(t *testing.T, set map[string]any) (*manifests, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	vals, err := util.ToRenderValues(ch, set, common.ReleaseOptions{Name: "trail", Namespace: "audit", IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return nil, err
	}
	out, err := engine.Engine{Strict: true}.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	m := &manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, pvcs: map[string]*corev1.PersistentVolumeClaim{},
	}
	for _, file := range slices.Sorted(maps.Keys(out)) {
		if !strings.HasSuffix(file, ".yaml") {
			continue
		}
		docs := releaseutil.SplitManifests(out[file])
		for _, k := range slices.Sorted(maps.Keys(docs)) {
			if strings.TrimSpace(docs[k]) == "" {
				continue
			}
			if err := m.decodeManifest([]byte(docs[k])); err != nil {
				t.Fatalf("%s: %v\n%s", file, err, docs[k])
			}
		}
	}
	return m, nil
}

// clusterValues is what the cluster mode is rendered with: values.yaml and
// the store's password.
var clusterValues = map[string]any{"store": map[string]any{"password": "s3cret"}, "signingKey": map[string]any{"existingSecret": "trail-signing-key"}}

// TestHelmChartLint runs Helm's own chart linter in both modes.
func TestHelmChartLint(t *testing.T) {
	for mode, vals := range map[string]map[string]any{"cluster": clusterValues, "single": {"mode": "single"}} {
		l := lint.RunAll(chartDir, vals, "audit")
		for _, msg := range l.Messages {
			if msg.Severity >= support.WarningSev {
				t.Errorf("%s: helm lint: %v", mode, msg)
			}
		}
	}
}

// TestHelmChartStrict checks the strict decoding the chart tests rely on
// refuses a field its type does not have, and that the chart refuses an
// unknown mode.
func TestHelmChartStrict(t *testing.T) {
	m := &manifests{deployments: map[string]*appsv1.Deployment{}}
	good := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: 2\n"
	if err := m.decodeManifest([]byte(good)); err != nil {
		t.Fatalf("a valid Deployment: %v", err)
	}
	for _, bad := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replica: 2\n",                 // unknown field
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: 2\n  replicas: 3\n", // duplicate field
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: two\n",              // wrong type
		"apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: a}\n",                                 // unexpected apiVersion
	} {
		if err := m.decodeManifest([]byte(bad)); err == nil {
			t.Errorf("decoded:\n%s", bad)
		}
	}
	if _, err := renderChart(t, map[string]any{"mode": "clustre"}); err == nil || !strings.Contains(err.Error(), "clustre") {
		t.Errorf("mode clustre rendered: %v", err)
	}
	if _, err := renderChart(t, map[string]any{"store": map[string]any{"password": "s3cret"}}); err == nil || !strings.Contains(err.Error(), "signingKey.existingSecret") {
		t.Errorf("the cluster mode rendered without a signing key: %v", err)
	}
}

// TestHelmChartCluster renders the cluster mode and checks ingest, writer
// and query Deployments whose command lines and configuration file serve
// parses and would start in their role, with probes on /livez and /readyz
// on the port serve listens on, resource requests, Services and
// PodDisruptionBudgets that select them, the store's password from the
// Secret, and the signing key from the Secret named for it, on the nodes
// that sign only.
func TestHelmChartCluster(t *testing.T) {
	m, err := renderChart(t, clusterValues)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	srv := startSingleNode(t)
	want := map[string]int{app.RoleIngest: 2, app.RoleWriter: 2, app.RoleQuery: 1}
	got := map[string]int{}
	for name, d := range m.deployments {
		cfg, pod := checkPodSpec(t, m, d, srv)
		got[cfg.Role] += int(*d.Spec.Replicas)
		if cfg.NATS.URL == "" || cfg.NATS.Replicas != 3 {
			t.Errorf("%s: --nats %q, stream replicas %d: want the NATS cluster and 3 replicas", name, cfg.NATS.URL, cfg.NATS.Replicas)
		}
		if !strings.HasPrefix(cfg.Store, "postgres://") {
			t.Errorf("%s: store %q, want PostgreSQL", name, cfg.Store)
		}
		checkStorePassword(t, m, name, pod)
		checkSigningKey(t, name, cfg, pod)
		if pdbFor(m, d) == nil {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", name)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("pods by role %v, want %v", got, want)
	}
	for _, role := range []string{app.RoleIngest, app.RoleQuery} {
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.services)), func(s *corev1.Service) bool {
			d := serviceTarget(t, m, s)
			return d != nil && roleOf(d) == role
		}) {
			t.Errorf("no Service in front of the %s pods", role)
		}
	}
	for _, s := range m.services {
		if serviceTarget(t, m, s) == nil {
			t.Errorf("Service %s selects no Deployment's pods", s.Name)
		}
	}
	for _, p := range m.pdbs {
		checkPDB(t, m, p)
	}
	if len(m.pvcs) != 0 {
		t.Errorf("the cluster mode makes claims %v: its nodes keep no state but the spool", slices.Collect(maps.Keys(m.pvcs)))
	}
}

// TestHelmChartSingle renders the single-node mode: one pod running every
// role on the embedded SQLite store in a PersistentVolumeClaim, never two at
// once, behind a Service.
func TestHelmChartSingle(t *testing.T) {
	m, err := renderChart(t, map[string]any{"mode": "single"})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	srv := startSingleNode(t)
	if len(m.deployments) != 1 {
		t.Fatalf("deployments %v, want one", slices.Collect(maps.Keys(m.deployments)))
	}
	for name, d := range m.deployments {
		cfg, pod := checkPodSpec(t, m, d, srv)
		if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("%s: %d replicas, strategy %q: one process owns the SQLite file, so 1 and Recreate", name, *d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if cfg.Role != app.RoleAll || cfg.NATS.URL != "" || cfg.Store != "sqlite" {
			t.Errorf("%s: role %q, nats %q, store %q: want the single process on SQLite", name, cfg.Role, cfg.NATS.URL, cfg.Store)
		}
		v := volumeMountedAt(t, pod, cfg.DataDir)
		if v.PersistentVolumeClaim == nil {
			t.Fatalf("%s: %s is not on a PersistentVolumeClaim: %+v", name, cfg.DataDir, v)
		}
		pvc := m.pvcs[v.PersistentVolumeClaim.ClaimName]
		if pvc == nil {
			t.Fatalf("%s: claim %s is not in the chart", name, v.PersistentVolumeClaim.ClaimName)
		}
		if pvc.Spec.Resources.Requests.Storage().IsZero() || !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) {
			t.Errorf("claim %s: size %v, modes %v", pvc.Name, pvc.Spec.Resources.Requests.Storage(), pvc.Spec.AccessModes)
		}
	}
	if len(m.services) != 1 {
		t.Errorf("services %v, want one", slices.Collect(maps.Keys(m.services)))
	}
	for _, s := range m.services {
		if serviceTarget(t, m, s) == nil {
			t.Errorf("Service %s selects no Deployment's pods", s.Name)
		}
	}
	if len(m.pdbs) != 0 || len(m.secrets) != 0 {
		t.Errorf("single mode makes PodDisruptionBudgets %v (one pod cannot stay up through a drain) and Secrets %v (SQLite has no password)", slices.Collect(maps.Keys(m.pdbs)), slices.Collect(maps.Keys(m.secrets)))
	}

	// An existing claim is used instead of making one.
	m, err = renderChart(t, map[string]any{"mode": "single", "single": map[string]any{"persistence": map[string]any{"existingClaim": "mine"}}})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	for _, d := range m.deployments {
		if v := volumeMountedAt(t, &d.Spec.Template.Spec, "/data"); v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "mine" || len(m.pvcs) != 0 {
			t.Errorf("with existingClaim mine: volume %+v, claims made %d", v, len(m.pvcs))
		}
	}
}

// checkPodSpec checks one Deployment's pods: selected by its selector, one
// container running serve, whose command line (with the ConfigMap's
// configuration file) serve parses and would start, listening on the
// container's port named http, probed on /livez and /readyz there, with
// resource requests, as a non-root user.
func checkPodSpec(t *testing.T, m *manifests, d *appsv1.Deployment, srv string) (app.Config, *corev1.PodSpec) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Fatalf("%s: selector %v does not select its pods' labels %v (%v)", d.Name, d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	pod := &d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.Name, len(pod.Containers))
	}
	c := pod.Containers[0]
	files := map[string]string{}
	for _, vm := range c.VolumeMounts {
		v := volumeMountedAt(t, pod, vm.MountPath)
		if v.ConfigMap == nil {
			continue
		}
		cm := m.configMaps[v.ConfigMap.Name]
		if cm == nil {
			t.Fatalf("%s mounts ConfigMap %s, which the chart does not make", d.Name, v.ConfigMap.Name)
		}
		for k, content := range cm.Data {
			files[vm.MountPath+"/"+k] = content
		}
	}
	cfg := checkServe(t, d.Name, withFiles(t, d.Name, append(slices.Clone(c.Command), c.Args...), files))
	if cfg.Role == "" {
		cfg.Role = app.RoleAll
	}
	if d.Labels["app.kubernetes.io/component"] == "" {
		t.Errorf("%s: no component label", d.Name)
	}

	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatalf("%s: --addr %q: %v", d.Name, cfg.Addr, err)
	}
	if p := containerPort(c, "http"); strconv.Itoa(int(p)) != port {
		t.Errorf("%s: container port http is %d; serve listens on %s", d.Name, p, port)
	}
	for what, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		want := "/livez"
		if what == "readiness" {
			want = "/readyz"
		}
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", d.Name, what)
			continue
		}
		if probe.HTTPGet.Path != want {
			t.Errorf("%s: %s probe on %s, want %s", d.Name, what, probe.HTTPGet.Path, want)
		}
		if p := probe.HTTPGet.Port; p.String() != port && strconv.Itoa(int(containerPort(c, p.String()))) != port {
			t.Errorf("%s: %s probe on port %s; serve listens on %s", d.Name, what, p.String(), port)
		}
		if code, out, errOut := runCmd(t, "health", "--url", srv+probe.HTTPGet.Path); code != 0 {
			t.Errorf("%s: %s probe path %s on a real server = %d: %s %s", d.Name, what, probe.HTTPGet.Path, code, out, errOut)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s: resource requests %v, want cpu and memory", d.Name, c.Resources.Requests)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("%s: pods may run as root: %+v", d.Name, pod.SecurityContext)
	}
	volumeMountedAt(t, pod, cfg.DataDir)
	if sc := c.SecurityContext; sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		volumeMountedAt(t, pod, "/tmp") // serve builds export bundles in the temporary directory
	}
	return cfg, pod
}

// checkStorePassword checks the pods of a PostgreSQL node take PGPASSWORD
// from a Secret of the chart that has the key.
func checkStorePassword(t *testing.T, m *manifests, name string, pod *corev1.PodSpec) {
	t.Helper()
	for _, e := range pod.Containers[0].Env {
		if e.Name != "PGPASSWORD" {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref == nil {
			t.Fatalf("%s: PGPASSWORD is not from a Secret", name)
		}
		s := m.secrets[ref.Name]
		if s == nil || s.StringData[ref.Key] != "s3cret" {
			t.Errorf("%s: PGPASSWORD from %s/%s, which does not hold the password", name, ref.Name, ref.Key)
		}
		return
	}
	t.Errorf("%s: no PGPASSWORD for the store", name)
}

// checkSigningKey checks a writer or query pod's --signing-key is the key of
// the Secret named in signingKey.existingSecret, mounted read-only, and that
// an ingest pod, which signs nothing, is given no key.
func checkSigningKey(t *testing.T, name string, cfg app.Config, pod *corev1.PodSpec) {
	t.Helper()
	if cfg.Role == app.RoleIngest {
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				t.Errorf("%s: an ingest pod signs nothing, yet mounts Secret %s", name, v.Secret.SecretName)
			}
		}
		return
	}
	if cfg.SigningKey == "" {
		t.Fatalf("%s: no --signing-key", name)
	}
	dir, file := filepath.Split(cfg.SigningKey)
	v := volumeMountedAt(t, pod, dir)
	if v.Secret == nil || v.Secret.SecretName != "trail-signing-key" {
		t.Fatalf("%s: --signing-key %s is not in the signing key's Secret: %+v", name, cfg.SigningKey, v.VolumeSource)
	}
	if !slices.ContainsFunc(v.Secret.Items, func(k corev1.KeyToPath) bool { return k.Key == "signing.key" && k.Path == file }) {
		t.Errorf("%s: the Secret's key signing.key is not mounted as %s: %+v", name, file, v.Secret.Items)
	}
	for _, vm := range pod.Containers[0].VolumeMounts {
		if vm.Name == v.Name && !vm.ReadOnly {
			t.Errorf("%s: the signing key is mounted writable", name)
		}
	}
}

// volumeMountedAt returns the pod volume the container mounts at path.
func volumeMountedAt(t *testing.T, pod *corev1.PodSpec, path string) corev1.Volume {
	t.Helper()
	for _, vm := range pod.Containers[0].VolumeMounts {
		if filepath.Clean(vm.MountPath) != filepath.Clean(path) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name {
				return v
			}
		}
		t.Fatalf("mount %s names volume %s, which the pod does not have", path, vm.Name)
	}
	t.Fatalf("nothing is mounted at %s", path)
	return corev1.Volume{}
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// serviceTarget returns the one Deployment whose pods s selects, checking
// its target port is one of theirs.
func serviceTarget(t *testing.T, m *manifests, s *corev1.Service) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range m.deployments {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return nil
	}
	c := found[0].Spec.Template.Spec.Containers[0]
	for _, p := range s.Spec.Ports {
		ok := slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == p.TargetPort.String() || strconv.Itoa(int(cp.ContainerPort)) == p.TargetPort.String()
		})
		if !ok {
			t.Errorf("Service %s: target port %s is no port of %s", s.Name, p.TargetPort.String(), found[0].Name)
		}
	}
	return found[0]
}

// roleOf is the --role a Deployment's pods run.
func roleOf(d *appsv1.Deployment) string {
	args := d.Spec.Template.Spec.Containers[0].Args
	if i := slices.Index(args, "--role"); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return app.RoleAll
}

func pdbFor(m *manifests, d *appsv1.Deployment) *policyv1.PodDisruptionBudget {
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return p
		}
	}
	return nil
}

// checkPDB checks a budget selects one Deployment's pods and lets a drain
// go on: it never demands every pod.
func checkPDB(t *testing.T, m *manifests, p *policyv1.PodDisruptionBudget) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Errorf("PodDisruptionBudget %s: selector %v (%v)", p.Name, p.Spec.Selector, err)
		return
	}
	var names []string
	var replicas int32
	for _, d := range m.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			names = append(names, d.Name)
			replicas += *d.Spec.Replicas
		}
	}
	sort.Strings(names)
	if len(names) != 1 {
		t.Errorf("PodDisruptionBudget %s selects the pods of %v, want one Deployment's", p.Name, names)
		return
	}
	if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
		t.Errorf("PodDisruptionBudget %s: give one of minAvailable and maxUnavailable", p.Name)
	}
	if u := p.Spec.MaxUnavailable; u != nil && u.IntValue() < 1 && u.String() != "100%" {
		t.Errorf("PodDisruptionBudget %s: maxUnavailable %s lets no pod of %s be drained", p.Name, u.String(), names[0])
	}
	if a := p.Spec.MinAvailable; a != nil && a.IntValue() >= int(replicas) {
		t.Errorf("PodDisruptionBudget %s: minAvailable %s of %d pods lets none be drained", p.Name, a.String(), replicas)
	}
}
