package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigningRotateKeepsOldPublicKeys: after rotations the ring signs with
// the newest key only, the public file lists every key ever used, and each
// old signature still verifies against it.
func TestSigningRotateKeepsOldPublicKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.key")
	first, err := CreateSigningFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateSigningFile(path, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create over an existing ring: %v", err)
	}
	msg := []byte("checkpoint")
	sigs := map[string][]byte{first.ID: first.Sign(msg)}
	for range 2 {
		k, err := RotateSigningFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sigs[k.ID] = k.Sign(msg)
	}
	current, err := LoadSigning(path)
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := LoadPublic(PublicPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 3 || pubs[2].ID != current.ID {
		t.Fatalf("public keys %v, current %s", pubs, current.ID)
	}
	for _, p := range pubs {
		if !p.Verify(msg, sigs[p.ID]) {
			t.Errorf("key %s: its signature does not verify", p.ID)
		}
		if p.Verify([]byte("other"), sigs[p.ID]) {
			t.Errorf("key %s verifies a signature of another message", p.ID)
		}
	}
	for _, f := range []string{path, PublicPath(path)} {
		if info, _ := os.Stat(f); info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, info.Mode().Perm())
		}
	}
	data, _ := os.ReadFile(path)
	if strings.Count(string(data), `"seed"`) != 1 {
		t.Errorf("the rotated ring keeps old private keys:\n%s", data)
	}
}

func TestLoadSigningRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	k, err := CreateSigningFile(good, false)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"loose mode", string(data), 0o644, "must not be accessible"},
		{"edited id", strings.Replace(string(data), k.ID, "0123456789abcdef", 1), 0o600, "does not match"},
		{"empty", `{"version":1,"signing_keys":[]}`, 0o600, "no keys"},
		{"not json", "nope", 0o600, "invalid JSON"},
		{"bad seed", `{"version":1,"signing_keys":[{"id":"x","seed":"AAAA"}]}`, 0o600, "seed is not base64"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, tt.mode)
		if _, err := LoadSigning(p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

// FuzzParsePublic feeds arbitrary public key files (a verifier reads them
// from wherever it is told): no panic, and an accepted list round-trips
// with every id matching its key.
func FuzzParsePublic(f *testing.F) {
	k, _ := NewSigningKey()
	good, _ := MarshalPublic([]PublicKey{k.Public()})
	f.Add(good)
	f.Add([]byte(`{"version":1,"public_keys":[{"id":"x","public_key":"AAAA"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParsePublic(data)
		if err != nil {
			return
		}
		for _, p := range keys {
			if SigningKeyID(p.Key) != p.ID {
				t.Fatalf("accepted key %s whose id does not match", p.ID)
			}
		}
		again, err := MarshalPublic(keys)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePublic(again)
		if err != nil || len(back) != len(keys) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
