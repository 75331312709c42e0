package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/config"
	"github.com/pamtrail/pamtrail/gateway/recorder"
)

type actions struct {
	mu  sync.Mutex
	got []recorder.AdminAction
}

func (a *actions) AdminAction(_ context.Context, x recorder.AdminAction) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, x)
	return nil
}

func (a *actions) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, x := range a.got {
		out = append(out, x.Identity+" "+x.Operation+" "+x.Target+" "+x.Result)
	}
	return out
}

// startAdmin serves the API for identity "ops" (token "ops-token") and
// returns a client with that token and one with a wrong token.
func startAdmin(t *testing.T) (*Control, *actions, *Client, *Client) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("ops-token"))
	cfg := config.Default()
	cfg.Gateway.ID = "gw-test"
	cfg.Admin = &config.Admin{Address: "127.0.0.1:0", LocksFile: filepath.Join(dir, "locks.json"),
		Identities: []config.AdminIdentity{{Name: "ops", TokenSHA256: hex.EncodeToString(sum[:])}}}
	ctl, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rec := &actions{}
	srv, err := StartAdmin(ctl, rec, func(string) (int, []string, error) { return 0, nil, nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	client := func(token string) *Client {
		f := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := NewClient([]string{"http://" + srv.Addr().String()}, f, "")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return ctl, rec, client("ops-token"), client("wrong-token")
}

// Only a known token may act; every action, refused ones included, is
// recorded with who, what and the result.
func TestAdminAPIAuthAndRecords(t *testing.T) {
	ctl, rec, ops, stranger := startAdmin(t)
	ctx := context.Background()
	if out := stranger.Lock(ctx, LockRequest{Kind: LockUser, Name: "bob"}); out[0].Err == nil || !strings.Contains(out[0].Err.Error(), "401") {
		t.Fatalf("a wrong token locked: %+v", out[0])
	}
	if len(ctl.Locks()) != 0 {
		t.Fatal("a refused request set a lock")
	}
	if out := ops.Lock(ctx, LockRequest{Kind: LockUser, Name: "bob", For: "1h", Reason: "incident"}); out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	if out := ops.Lock(ctx, LockRequest{Kind: "team", Name: "x"}); out[0].Err == nil {
		t.Fatal("a lock of an unknown kind was accepted")
	}
	if _, err := ops.Terminate(ctx, "no-such-session", "why", ""); err == nil {
		t.Fatal("terminating an unknown session succeeded")
	}
	if out := ops.Unlock(ctx, LockUser, "bob"); out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	want := []string{
		"unauthenticated lock  unauthorized",
		"ops lock user:bob ok",
		`ops lock team:x rejected: lock kind must be user or account, not "team"`,
		"ops terminate no-such-session not_found",
		"ops unlock user:bob ok",
	}
	if got := rec.list(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recorded admin actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Locks live in a 0600 file: a new control (a restart) finds them, and
// an expired one no longer holds.
func TestLocksPersist(t *testing.T) {
	ctl, _, ops, _ := startAdmin(t)
	ctx := context.Background()
	if out := ops.Lock(ctx, LockRequest{Kind: LockAccount, Name: "prod-db", Reason: "maintenance"}); out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	path := ctl.Config().Admin.LocksFile
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("locks file: %v mode %v", err, fi.Mode())
	}
	again, err := New(ctl.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, locked := again.locks.find("alice", "prod-db", time.Now()); !locked {
		t.Fatal("the restarted control lost the lock")
	}
	if _, locked := again.locks.find("alice", "prod-db", time.Now().Add(24*time.Hour)); !locked {
		t.Fatal("a lock without --for expired")
	}
	if l := again.Locks(); len(l) != 1 || l[0].By != "ops" || l[0].Reason != "maintenance" {
		t.Fatalf("locks after restart: %+v", l)
	}
}
