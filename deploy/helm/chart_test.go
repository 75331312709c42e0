// Package helm tests the pamtrail chart: helm lint and helm template (helm's
// own commands, run in-process from the helm module) for the default values
// and ci/production-values.yaml, every rendered object strictly decoded into
// the Kubernetes API types (an unknown field fails), and the properties the
// chart promises checked on the typed objects.
package helm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	helmcmd "helm.sh/helm/v4/pkg/cmd"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

const chartDir = "pamtrail"

var valueSets = []struct{ name, file string }{
	{"default", ""},
	{"production", filepath.Join(chartDir, "ci", "production-values.yaml")},
}

// helm runs one helm command in-process and returns its output.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	for _, v := range []string{"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"} {
		t.Setenv(v, filepath.Join(home, v))
	}
	var out bytes.Buffer
	cmd, err := helmcmd.NewRootCmd(&out, args, func(bool) {})
	if err != nil {
		return "", err
	}
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err = cmd.Execute()
	return out.String(), err
}

func valuesArgs(file string) []string {
	if file == "" {
		return nil
	}
	return []string{"--values", file}
}

func TestHelmLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chartDir}, valuesArgs(vs.file)...)...)
			if err != nil || !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// rendered is one helm template run, decoded.
type rendered struct {
	statefulSets []appsv1.StatefulSet
	deployments  []appsv1.Deployment
	services     []corev1.Service
	configMaps   []corev1.ConfigMap
	secrets      []corev1.Secret
	pvcs         []corev1.PersistentVolumeClaim
	pdbs         []policyv1.PodDisruptionBudget
	policies     []networkingv1.NetworkPolicy
}

// strictDecode converts a YAML document to JSON and decodes it into out,
// refusing fields the API type does not have.
func strictDecode(doc []byte, out any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

func decodeInto[T any](doc []byte, list *[]T) error {
	var v T
	if err := strictDecode(doc, &v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

func render(t *testing.T, valuesFile string) rendered {
	t.Helper()
	out, err := helm(t, append([]string{"template", "rel", chartDir, "--namespace", "pamtrail", "--kube-version", "1.31.0"}, valuesArgs(valuesFile)...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	var r rendered
	for i, doc := range strings.Split(out, "\n---") {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		if head.Kind == "" {
			continue // a comment-only document
		}
		b := []byte(doc)
		switch head.APIVersion + "/" + head.Kind {
		case "apps/v1/StatefulSet":
			err = decodeInto(b, &r.statefulSets)
		case "apps/v1/Deployment":
			err = decodeInto(b, &r.deployments)
		case "v1/Service":
			err = decodeInto(b, &r.services)
		case "v1/ConfigMap":
			err = decodeInto(b, &r.configMaps)
		case "v1/Secret":
			err = decodeInto(b, &r.secrets)
		case "v1/PersistentVolumeClaim":
			err = decodeInto(b, &r.pvcs)
		case "policy/v1/PodDisruptionBudget":
			err = decodeInto(b, &r.pdbs)
		case "networking.k8s.io/v1/NetworkPolicy":
			err = decodeInto(b, &r.policies)
		default:
			err = fmt.Errorf("no API type registered in this test for %s %s", head.APIVersion, head.Kind)
		}
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", head.APIVersion, head.Kind, err, doc)
		}
	}
	return r
}

func TestHelmTemplateDecodesStrictly(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := render(t, vs.file)
			if len(r.statefulSets) != 1 || len(r.deployments) != 1 || len(r.pdbs) != 2 || len(r.policies) != 2 {
				t.Fatalf("rendered %d StatefulSets, %d Deployments, %d PDBs, %d NetworkPolicies; want 1, 1, 2, 2",
					len(r.statefulSets), len(r.deployments), len(r.pdbs), len(r.policies))
			}
			checkGateway(t, r.statefulSets[0])
			checkCollectorPolicy(t, r)
			checkCollectorMemory(t, r.deployments[0].Spec.Template.Spec)
			for _, pod := range []corev1.PodSpec{r.statefulSets[0].Spec.Template.Spec, r.deployments[0].Spec.Template.Spec} {
				checkPod(t, pod)
			}
		})
	}
}

func checkGateway(t *testing.T, sts appsv1.StatefulSet) {
	t.Helper()
	if len(sts.Spec.VolumeClaimTemplates) != 1 || sts.Spec.VolumeClaimTemplates[0].Name != "spool" {
		t.Errorf("gateway StatefulSet has no spool volumeClaimTemplate: %+v", sts.Spec.VolumeClaimTemplates)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		t.Errorf("gateway readiness probe is not /healthz: %+v", p)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.Name == "spool" && m.MountPath == "/var/lib/pamtrail")
	}
	if !mounted {
		t.Errorf("the spool claim is not mounted at /var/lib/pamtrail: %+v", c.VolumeMounts)
	}
}

// checkCollectorPolicy: the collector's OTLP port admits the gateway pods and
// nothing else.
func checkCollectorPolicy(t *testing.T, r rendered) {
	t.Helper()
	collector := r.deployments[0].Spec.Template.Labels
	gateway := r.statefulSets[0].Spec.Template.Labels
	var otlpPort int32
	for _, p := range r.deployments[0].Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "otlp" {
			otlpPort = p.ContainerPort
		}
	}
	for _, np := range r.policies {
		if !selects(np.Spec.PodSelector.MatchLabels, collector) {
			continue
		}
		for _, rule := range np.Spec.Ingress {
			opensOTLP := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				opensOTLP = opensOTLP || p.Port == nil || p.Port.IntVal == otlpPort
			}
			if !opensOTLP {
				continue
			}
			if len(rule.From) != 1 || rule.From[0].PodSelector == nil || rule.From[0].NamespaceSelector != nil ||
				!selects(rule.From[0].PodSelector.MatchLabels, gateway) || selects(rule.From[0].PodSelector.MatchLabels, collector) {
				t.Errorf("NetworkPolicy %s opens the OTLP port %d to more than the gateways: %+v", np.Name, otlpPort, rule.From)
			}
		}
		return
	}
	t.Error("no NetworkPolicy selects the collector pods")
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// checkCollectorMemory: the collector's GOMEMLIMIT (a soft cap on the heap
// that GOGC lets grow) leaves room under the container's memory limit, so
// the kernel does not kill the collector before the Go runtime collects.
func checkCollectorMemory(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	c := pod.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["GOGC"] == "" {
		t.Errorf("collector container sets no GOGC: %+v", c.Env)
	}
	// Go writes binary units as KiB, MiB, GiB; Kubernetes as Ki, Mi, Gi.
	limit, err := resource.ParseQuantity(strings.TrimSuffix(env["GOMEMLIMIT"], "B"))
	if err != nil {
		t.Fatalf("collector GOMEMLIMIT %q: %v", env["GOMEMLIMIT"], err)
	}
	if max := c.Resources.Limits.Memory(); limit.Cmp(*max) >= 0 {
		t.Errorf("collector GOMEMLIMIT %s is not below its memory limit %s", &limit, max)
	}
}

func checkPod(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod may run as root: %+v", pod.SecurityContext)
	}
	for _, c := range pod.Containers {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s lacks resource requests or limits: %+v", c.Name, c.Resources)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("container %s lacks a readiness or liveness probe", c.Name)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s root filesystem is writable", c.Name)
		}
	}
}

// TestRenderedConfigsLoad: the gateway and collector configs the chart
// renders are accepted by the binaries themselves (validate subcommands).
func TestRenderedConfigsLoad(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := render(t, vs.file)
			dir := t.TempDir()
			for _, cm := range r.configMaps {
				for name, content := range cm.Data {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			env := append(os.Environ(),
				"PAMTRAIL_SPOOL_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "PAMTRAIL_QUEUE_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
				"PAMTRAIL_ES_URL=http://127.0.0.1:9200", "PAMTRAIL_ES_USER=u", "PAMTRAIL_ES_PASSWORD=p",
				"ORDERS_DB_PASSWORD=x", "BASTION_SSH_KEY=x")
			for _, c := range []struct{ bin, config string }{
				{"pamtrail", "gateway.yaml"},
				{"otelcol-pamtrail", "config.yaml"},
			} {
				bin, err := filepath.Abs(filepath.Join("..", "..", "bin", c.bin))
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(bin, "validate", "--config", filepath.Join(dir, c.config))
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s validate %s: %v\n%s", c.bin, c.config, err, out)
				}
			}
		})
	}
}
