package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// envRef matches ${NAME} and ${NAME:-default}. Only the braced form is
// expanded: a bare $ is common in config values (SCRAM verifiers contain
// "$4096:"), so it is never touched.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv substitutes environment variables in the raw config text, so one
// file can point at services on other ports or hosts. A variable that is
// unset and has no default is an error naming it and its line.
func expandEnv(raw []byte) ([]byte, error) {
	var missing []string
	out := envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		name := string(sub[1])
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return []byte(v)
		}
		if sub[2] != nil {
			return sub[3]
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		lines := strings.Split(string(raw), "\n")
		var where []string
		for _, name := range missing {
			for i, l := range lines {
				if strings.Contains(l, "${"+name) {
					where = append(where, fmt.Sprintf("line %d: environment variable %s is not set (use ${%s:-default} for a default)", i+1, name, name))
					break
				}
			}
		}
		return nil, fmt.Errorf("config: %s", strings.Join(where, "; "))
	}
	return out, nil
}
