// Package deploy_test validates the deployment files offline, since no Docker engine or
// Kubernetes cluster runs where the tests do: every Kubernetes manifest under k8s/ is
// decoded strictly into the k8s.io/api types (an unknown or misspelt field fails), the
// compose file is loaded by compose-go (which validates it against the Compose
// specification's JSON schema), and the Dockerfile is parsed and linted by BuildKit's own
// parser. On top of the schemas, the tests check what this deployment relies on: probes,
// resource limits, a non-root read-only container, the drain deadline, selectors that match,
// and that every CITYEYES_* variable set is one cityeyes reads.
package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// configNames are the CITYEYES_* variables cityeyes reads, taken from its configuration
// code, so that a manifest setting a name nothing reads (a typo) fails here.
func configNames(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../cmd/cityeyes/config.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(CITYEYES_[A-Z0-9_]+)"`).FindAllSubmatch(src, -1) {
		names[string(m[1])] = true
		// Secrets may be given as NAME_FILE (config.go's secret()).
		names[string(m[1])+"_FILE"] = true
	}
	if len(names) < 20 {
		t.Fatalf("found only %d CITYEYES_* names in config.go", len(names))
	}
	return names
}

// manifests are the decoded Kubernetes objects, by kind.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	jobs        []*batchv1.Job
}

// loadManifests decodes every document of deploy/k8s/*.yaml strictly into its type.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under deploy/k8s: %v", err)
	}
	m := &manifests{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s, document %d", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				m.deployments, obj = append(m.deployments, o), o
			case "v1 Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1 Secret":
				o := &corev1.Secret{}
				m.secrets, obj = append(m.secrets, o), o
			case "policy/v1 PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				m.pdbs, obj = append(m.pdbs, o), o
			case "autoscaling/v2 HorizontalPodAutoscaler":
				o := &autoscalingv2.HorizontalPodAutoscaler{}
				m.hpas, obj = append(m.hpas, o), o
			case "batch/v1 Job":
				o := &batchv1.Job{}
				m.jobs, obj = append(m.jobs, o), o
			default:
				t.Fatalf("%s: %s %s is not a kind this test knows; add it", where, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			meta := obj.(metav1.Object)
			for _, msg := range validation.IsDNS1123Subdomain(meta.GetName()) {
				t.Errorf("%s: name %q: %s", where, meta.GetName(), msg)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestKubernetesManifests: the manifests decode strictly, and each workload has what running
// it safely needs.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	names := configNames(t)
	config := map[string]string{}
	for _, cm := range m.configMaps {
		if cm.Name == "cityeyes" {
			config = cm.Data
		}
	}
	secret := map[string]string{}
	for _, s := range m.secrets {
		if s.Name == "cityeyes" {
			secret = s.StringData
		}
	}
	for k := range config {
		if !names[k] {
			t.Errorf("ConfigMap sets %s, which cityeyes does not read", k)
		}
	}
	for k := range secret {
		if !names[k] {
			t.Errorf("Secret sets %s, which cityeyes does not read", k)
		}
	}
	for _, required := range []string{"CITYEYES_DATABASE_URL", "CITYEYES_JWT_SECRET", "CITYEYES_S3_SECRET_KEY"} {
		if _, ok := secret[required]; !ok {
			t.Errorf("the Secret has no %s", required)
		}
		if _, ok := config[required]; ok {
			t.Errorf("%s is a secret but is in the ConfigMap", required)
		}
	}
	shutdown, err := time.ParseDuration(config["CITYEYES_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("CITYEYES_SHUTDOWN_TIMEOUT in the ConfigMap: %v", err)
	}

	components := map[string]*appsv1.Deployment{}
	for _, d := range m.deployments {
		components[d.Spec.Template.Labels["app.kubernetes.io/component"]] = d
		t.Run(d.Name, func(t *testing.T) {
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Fatalf("selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
			}
			if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
				t.Error("a rolling update must keep every pod until its replacement is ready (maxUnavailable: 0)")
			}
			checkPod(t, d.Spec.Template.Spec, names, shutdown)
		})
	}
	api, worker := components["api"], components["worker"]
	if api == nil || worker == nil {
		t.Fatalf("want an api and a worker Deployment, have %v", components)
	}
	probe := func(d *appsv1.Deployment, p *corev1.Probe) string {
		if p == nil || p.HTTPGet == nil {
			return ""
		}
		return p.HTTPGet.Path + " on " + p.HTTPGet.Port.String()
	}
	for _, c := range []struct {
		d                   *appsv1.Deployment
		readiness, liveness string
		arg                 string
	}{{api, "/readyz on http", "/healthz on http", "api"}, {worker, "/readyz on metrics", "/healthz on metrics", "worker"}} {
		ct := c.d.Spec.Template.Spec.Containers[0]
		if got := probe(c.d, ct.ReadinessProbe); got != c.readiness {
			t.Errorf("%s: readiness probe %q, want %q", c.d.Name, got, c.readiness)
		}
		if got := probe(c.d, ct.LivenessProbe); got != c.liveness {
			t.Errorf("%s: liveness probe %q, want %q", c.d.Name, got, c.liveness)
		}
		if !slices.Equal(ct.Args, []string{c.arg}) {
			t.Errorf("%s runs %v, want [%s]", c.d.Name, ct.Args, c.arg)
		}
	}
	// A worker has no API port: its probes need its metrics address.
	metricsAddr := ""
	for _, e := range worker.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "CITYEYES_METRICS_ADDR" {
			metricsAddr = e.Value
		}
	}
	if !strings.HasSuffix(metricsAddr, ":9090") || worker.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 9090 {
		t.Errorf("the worker's metrics address %q and its port do not agree", metricsAddr)
	}
	if api.Spec.Template.Spec.Containers[0].Lifecycle == nil || api.Spec.Template.Spec.Containers[0].Lifecycle.PreStop == nil ||
		api.Spec.Template.Spec.Containers[0].Lifecycle.PreStop.Sleep == nil {
		t.Error("the api needs a preStop pause, so that no connection reaches a listener already closed")
	}

	for _, s := range m.services {
		d := selected(t, m.deployments, s.Spec.Selector)
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(d.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.String() }) {
				t.Errorf("Service %s targets port %q, which %s does not name", s.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	for _, p := range m.pdbs {
		selected(t, m.deployments, p.Spec.Selector.MatchLabels)
	}
	for _, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Name != api.Name || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			t.Errorf("HPA %s: target %s, min %v; want the api with at least 2", h.Name, h.Spec.ScaleTargetRef.Name, h.Spec.MinReplicas)
		}
	}
	if len(m.jobs) != 1 || !slices.Equal(m.jobs[0].Spec.Template.Spec.Containers[0].Args, []string{"migrate"}) {
		t.Error("want one Job running cityeyes migrate (the first step of an upgrade)")
	} else {
		checkPod(t, m.jobs[0].Spec.Template.Spec, names, shutdown)
	}
}

// selected finds the one Deployment whose pods a label selector picks.
func selected(t *testing.T, ds []*appsv1.Deployment, want map[string]string) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range ds {
		if len(want) > 0 && labels.SelectorFromSet(want).Matches(labels.Set(d.Spec.Template.Labels)) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("selector %v picks %d Deployments, want 1", want, len(found))
	}
	return found[0]
}

// checkPod checks what every pod of cityeyes needs: limits, a non-root read-only container
// without privileges, configuration from the ConfigMap and Secret, and (for long-running
// pods) a grace period longer than the drain deadline.
func checkPod(t *testing.T, pod corev1.PodSpec, names map[string]bool, shutdown time.Duration) {
	t.Helper()
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod must run as a non-root user (runAsNonRoot, runAsUser)")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.Contains(c.Image, "cityeyes:") {
		t.Errorf("image %q", c.Image)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %v and limit %v; want both, request <= limit", c.Name, r, req.String(), lim.String())
		}
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil ||
		!*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities dropped", c.Name)
	}
	refs := map[string]bool{}
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			refs["configmap/"+e.ConfigMapRef.Name] = true
		case e.SecretRef != nil:
			refs["secret/"+e.SecretRef.Name] = true
		}
	}
	if !refs["configmap/cityeyes"] || !refs["secret/cityeyes"] {
		t.Errorf("%s takes its configuration from %v, want the cityeyes ConfigMap and Secret", c.Name, refs)
	}
	for _, e := range c.Env {
		if !names[e.Name] {
			t.Errorf("%s sets %s, which cityeyes does not read", c.Name, e.Name)
		}
	}
	// The data directory must be writable on a read-only root.
	if !slices.ContainsFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == "/data" }) {
		t.Errorf("%s: no volume at /data (CITYEYES_DATA_DIR) on a read-only root", c.Name)
	}
	if pod.RestartPolicy == corev1.RestartPolicyOnFailure {
		return // a Job
	}
	grace := time.Duration(0)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	pause := time.Duration(0)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if grace <= pause+shutdown {
		t.Errorf("%s: terminationGracePeriodSeconds %v must exceed the preStop pause %v plus CITYEYES_SHUTDOWN_TIMEOUT %v, or Kubernetes kills it while it drains",
			c.Name, grace, pause, shutdown)
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.StartupProbe == nil {
		t.Errorf("%s: want startup, readiness and liveness probes", c.Name)
	}
}

// TestCompose: compose.yaml is valid against the Compose specification (compose-go's loader
// checks the JSON schema and resolves the file), has the servers and both processes, and
// sets only variables cityeyes reads.
func TestCompose(t *testing.T) {
	names := configNames(t)
	env := map[string]string{"POSTGRES_PASSWORD": "pw-for-the-test", "MINIO_ROOT_PASSWORD": "minio-for-the-test",
		"CITYEYES_JWT_SECRET": strings.Repeat("s", 32)}
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	load := func(env map[string]string) (*types.Project, error) {
		return loader.LoadWithContext(context.Background(), types.ConfigDetails{
			WorkingDir:  abs,
			ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, "compose.yaml")}},
			Environment: env,
		}, func(o *loader.Options) { o.SetProjectName("cityeyes", true) })
	}
	p, err := load(env)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, want := range []string{"postgres", "redis", "minio", "migrate", "api", "worker"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("compose.yaml has no %s service", want)
		}
	}
	for _, name := range []string{"migrate", "api", "worker"} {
		s := p.Services[name]
		for k := range s.Environment {
			if !names[k] {
				t.Errorf("%s sets %s, which cityeyes does not read", name, k)
			}
		}
		if s.Environment["CITYEYES_DATABASE_URL"] == nil || !strings.HasPrefix(*s.Environment["CITYEYES_DATABASE_URL"], "postgres://") ||
			s.Environment["CITYEYES_REDIS_URL"] == nil || s.Environment["CITYEYES_S3_ENDPOINT"] == nil {
			t.Errorf("%s does not use PostgreSQL, Redis and MinIO: %v", name, s.Environment)
		}
	}
	if cmd := p.Services["worker"].Command; !slices.Equal(cmd, []string{"worker"}) || p.Services["worker"].Environment["CITYEYES_METRICS_ADDR"] == nil {
		t.Errorf("the worker runs %v without a metrics address", cmd)
	}
	for _, name := range []string{"api", "worker"} {
		if dep, ok := p.Services[name].DependsOn["migrate"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s must start after the migrations: %v", name, p.Services[name].DependsOn)
		}
	}
	for _, name := range []string{"postgres", "minio"} {
		if len(p.Services[name].Volumes) == 0 {
			t.Errorf("%s keeps its data in no volume", name)
		}
	}
	// Without the secrets the file refuses to load, rather than start with empty ones.
	if _, err := load(map[string]string{}); err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Errorf("compose.yaml loads without its secrets: %v", err)
	}
}

// TestDockerfile: the Dockerfile parses and passes BuildKit's lint rules, builds in stages
// a static binary, and runs it as a non-root user with a health check and an entry point.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile: %s", w.Short)
	}
	var lint []string
	stages, _, err := instructions.Parse(res.AST, linter.New(&linter.Config{
		Warn: func(rule, desc, url, msg string, loc []parser.Range) { lint = append(lint, rule+": "+msg) },
	}))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, l := range lint {
		t.Errorf("Dockerfile lint: %s", l)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	static := false
	for _, c := range build.Commands {
		if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "CGO_ENABLED=0") &&
			strings.Contains(strings.Join(r.CmdLine, " "), "go build") {
			static = true
		}
	}
	if !static {
		t.Error("the build stage does not build with CGO_ENABLED=0 (a static binary)")
	}
	if !strings.Contains(final.BaseName, "distroless") {
		t.Errorf("the runtime stage is based on %s, want a distroless image", final.BaseName)
	}
	var user string
	var expose, entry, health, copied bool
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.ExposeCommand:
			expose = slices.Contains(c.Ports, "8080")
		case *instructions.EntrypointCommand:
			entry = slices.Equal(c.CmdLine, []string{"/usr/local/bin/cityeyes"})
		case *instructions.HealthCheckCommand:
			health = slices.Equal(c.Health.Test, []string{"CMD", "/usr/local/bin/cityeyes", "healthcheck"})
		case *instructions.CopyCommand:
			copied = copied || c.From == build.Name
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0:") || user == "0" {
		t.Errorf("the image runs as %q, want a non-root user", user)
	}
	if !expose || !entry || !health || !copied {
		t.Errorf("runtime stage: EXPOSE 8080 %v, ENTRYPOINT cityeyes %v, HEALTHCHECK cityeyes healthcheck %v, binary from the build stage %v",
			expose, entry, health, copied)
	}
}
