package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateRotatePruneRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.keys")
	first, err := CreateFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateFile(path, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second CreateFile without force = %v", err)
	}
	second, err := RotateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	third, err := RotateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(r.IDs(), ","), strings.Join([]string{first.ID, second.ID, third.ID}, ","); got != want {
		t.Fatalf("ids after two rotations = %s, want %s", got, want)
	}
	if r.Current().ID != third.ID {
		t.Fatalf("current = %s, want the newest %s", r.Current().ID, third.ID)
	}
	removed, err := PruneFile(path, map[string]int{second.ID: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != first.ID {
		t.Fatalf("pruned %v, want only the unused non-current %s", removed, first.ID)
	}
	r, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.IDs(), ","); got != second.ID+","+third.ID {
		t.Fatalf("ids after prune = %s", got)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("keyring mode %#o, want 0600", info.Mode().Perm())
	}
	// The same key seals and opens across a save/load round trip.
	_, a := r.CurrentAEAD()
	nonce := make([]byte, a.NonceSize())
	sealed := a.Seal(nil, nonce, []byte("hello"), nil)
	r2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := r2.AEAD(third.ID)
	if !ok {
		t.Fatal("current key missing after reload")
	}
	if pt, err := b.Open(nil, nonce, sealed, nil); err != nil || string(pt) != "hello" {
		t.Fatalf("open after reload = %q, %v", pt, err)
	}
}

func TestLoadRejects(t *testing.T) {
	good := func() string {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := NewRing(k)
		data, _ := r.Marshal()
		return string(data)
	}()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	b64 := base64.StdEncoding.EncodeToString(secret)
	id := deriveID(secret)
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"group readable", good, 0o640, "must not be accessible by group or others"},
		{"world readable", good, 0o604, "chmod 600"},
		{"not json", "key=abc", 0o600, "invalid JSON: syntax error at byte 1"},
		{"key as number", `{"version":1,"keys":[{"id":"x","key":5}]}`, 0o600, `field "keys.key" must be a string`},
		{"wrong version", `{"version":2,"keys":[]}`, 0o600, "version 2"},
		{"no keys", `{"version":1,"keys":[]}`, 0o600, "no keys"},
		{"short key", fmt.Sprintf(`{"version":1,"keys":[{"id":"%s","key":"%s"}]}`, id, base64.StdEncoding.EncodeToString(secret[:16])), 0o600, "16 bytes, want 32"},
		{"bad base64", fmt.Sprintf(`{"version":1,"keys":[{"id":"%s","key":"!!notbase64!!"}]}`, id), 0o600, "not valid base64"},
		{"id mismatch", fmt.Sprintf(`{"version":1,"keys":[{"id":"00000000","key":"%s"}]}`, b64), 0o600, "does not match"},
		{"duplicate", fmt.Sprintf(`{"version":1,"keys":[{"id":"%[1]s","key":"%[2]s"},{"id":"%[1]s","key":"%[2]s"}]}`, id, b64), 0o600, "duplicate key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), b64) {
				t.Fatal("error message contains key material")
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	tests := []struct {
		name, value, want string
	}{
		{"valid", base64.StdEncoding.EncodeToString(secret), ""},
		{"valid unpadded", base64.RawStdEncoding.EncodeToString(secret), ""},
		{"unset", "", "not set"},
		{"31 bytes", base64.StdEncoding.EncodeToString(secret[:31]), "31 bytes, want 32"},
		{"not base64", "%%%", "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PAMTRAIL_TEST_KEY", tt.value)
			r, err := FromEnv("PAMTRAIL_TEST_KEY")
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "PAMTRAIL_TEST_KEY") {
					t.Fatalf("FromEnv = %v, want an error naming the variable and %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Current().ID != deriveID(secret) {
				t.Fatalf("id %s is not derived from the key", r.Current().ID)
			}
		})
	}
}

func TestKeyNeverPrinted(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRing(k)
	data, _ := r.Marshal()
	var f keyringFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%v", r.Keys()), fmt.Sprintf("%#v", k)} {
		if strings.Contains(s, f.Keys[0].Key) || !strings.Contains(s, k.ID) {
			t.Fatalf("formatted key %q leaks material or lacks the id", s)
		}
	}
}
