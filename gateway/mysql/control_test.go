package mysql

import (
	"strings"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/recorder/recordertest"
	"github.com/pamtrail/pamtrail/gateway/schema"
)

func withPolicy(mode string) gatewayOption {
	return func(c *config.Config) {
		c.Policies = []config.Policy{{Name: "guard", Mode: mode, SQL: []config.SQLRule{
			{ID: "drop-database", Statement: "DROP DATABASE"},
			{ID: "set-global", Pattern: `^set\s+(@@)?global\b`},
		}}}
		c.Accounts[0].Policy = "guard"
	}
}

// TestPolicyBlocksStatements refuses a text holding a blocked statement
// before any of it runs (so the statements before it in the same text do
// not half-execute), answers 1227/42000 naming the rule, records it as
// blocked, and keeps the session usable; audit mode runs it and flags it.
func TestPolicyBlocksStatements(t *testing.T) {
	t.Run("enforce", func(t *testing.T) {
		g := startGateway(t, withPolicy(config.PolicyEnforce))
		db := g.open("")
		db.SetMaxOpenConns(1)
		for _, q := range []string{"DROP TABLE IF EXISTS gw_pol", "CREATE TABLE gw_pol (id INT)"} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		_, err := db.Exec("INSERT INTO gw_pol VALUES (1); SET GLOBAL max_connections = 10; INSERT INTO gw_pol VALUES (2)")
		if err == nil || !strings.Contains(err.Error(), "1227") || !strings.Contains(err.Error(), "rule set-global") {
			t.Fatalf("error = %v, want 1227 naming the rule", err)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM gw_pol").Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows after the refused text: %d (%v), want 0: nothing of it may run", n, err)
		}
		if _, err := db.Exec("DROP DATABASE pamtrail_test"); err == nil {
			t.Fatal("DROP DATABASE was not blocked")
		}
		db.Close()
		evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
		q := queryByText(evs, "SET GLOBAL max_connections = 10")
		if q.Policy == nil || q.Policy.Rule != "set-global" || !q.Policy.Blocks() || q.ErrorNumber != 1227 {
			t.Errorf("blocked statement event: %+v", q)
		}
		if q := queryByText(evs, "INSERT INTO gw_pol VALUES (1)"); !q.NotExecuted {
			t.Errorf("statement before the blocked one: %+v, want not executed", q)
		}
		if q := queryByText(evs, "DROP DATABASE pamtrail_test"); q.Policy == nil || q.Policy.Rule != "drop-database" {
			t.Errorf("DROP DATABASE event: %+v", q)
		}
	})
	t.Run("audit", func(t *testing.T) {
		g := startGateway(t, withPolicy(config.PolicyAudit))
		db := g.open("")
		var v string
		if err := db.QueryRow("SELECT @@GLOBAL.max_connections").Scan(&v); err != nil {
			t.Fatal(err)
		}
		// The demo user lacks SUPER: the server itself refuses, which shows
		// the statement reached it.
		if _, err := db.Exec("SET GLOBAL max_connections = " + v); err != nil && strings.Contains(err.Error(), "pamtrail") {
			t.Fatalf("audit mode must not block: %v", err)
		}
		db.Close()
		evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
		if q := queryByText(evs, "SET GLOBAL max_connections = "+v); q.Policy == nil || q.Policy.Blocks() || strings.Contains(q.ErrorMessage, "pamtrail") {
			t.Errorf("audited statement: %+v", q)
		}
	})
}

// TestTerminateAndLock ends a live session through the engine's registry
// (what pamtrail sessions terminate and lock do) and refuses a locked user.
func TestTerminateAndLock(t *testing.T) {
	g := startGateway(t)
	db := g.open("")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SELECT 1"); err != nil {
		t.Fatal(err)
	}
	sessions := g.engine.Sessions()
	if len(sessions) != 1 || sessions[0].User != testUser || sessions[0].Protocol != "mysql" {
		t.Fatalf("registry: %+v", sessions)
	}
	start := time.Now()
	if !g.engine.EndSession(sessions[0].ID, schema.EndTerminated, "terminated by admin: testing") {
		t.Fatal("EndSession found no session")
	}
	evs := g.waitEvents("session end", func(evs []recordertest.Event) bool { return hasKind(evs, "end") })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("terminate took %s", d)
	}
	for _, ev := range evs {
		if ev.Kind == "end" && ev.End.Reason != schema.EndTerminated {
			t.Errorf("end reason %q", ev.End.Reason)
		}
	}
	_, err := db.Exec("SELECT 1")
	if err == nil {
		t.Log("the driver reconnected transparently after the terminated connection")
	}
}
