package policy

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pamtrail/pamtrail/gateway/config"
)

// The quickstart enforces: on demo-postgres DROP DATABASE and ALTER
// SYSTEM are blocked, on demo-ssh reboot, shutdown and rm -rf /.
func TestQuickstartPolicies(t *testing.T) {
	raw, err := os.ReadFile("../../examples/quickstart/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Policies []config.Policy `yaml:"policies"`
		Accounts []struct {
			Name   string `yaml:"name"`
			Policy string `yaml:"policy"`
		} `yaml:"accounts"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	sets := map[string]*Set{}
	for _, a := range file.Accounts {
		for i := range file.Policies {
			if file.Policies[i].Name == a.Policy {
				s, err := Compile(&file.Policies[i])
				if err != nil {
					t.Fatal(err)
				}
				sets[a.Name] = s
			}
		}
	}
	pg, ssh := sets["demo-postgres"], sets["demo-ssh"]
	for _, stmt := range []string{"DROP DATABASE demo", "alter system set work_mem = '1GB'"} {
		if !pg.SQL(stmt).Blocks() {
			t.Errorf("demo-postgres does not block %q", stmt)
		}
	}
	if pg.SQL("drop table t") != nil {
		t.Error("demo-postgres blocks DROP TABLE")
	}
	for _, cmd := range []string{"reboot", "sudo shutdown -h now", "rm -rf /", "rm -rf /*"} {
		if !ssh.Command(cmd).Blocks() {
			t.Errorf("demo-ssh does not block %q", cmd)
		}
	}
	if ssh.Command("rm -rf /tmp/x") != nil {
		t.Error("demo-ssh blocks rm -rf /tmp/x")
	}
}
