package chain

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// TestCanonOrderIndependent: attributes added in any order give the same
// canonical form and link; a changed value or key changes the link.
func TestCanonOrderIndependent(t *testing.T) {
	type attr struct {
		key string
		add func(c *Canon, key string)
	}
	attrs := []attr{
		{"session.id", func(c *Canon, k string) { c.String(k, "s1") }},
		{"pam.seq", func(c *Canon, k string) { c.Int(k, 7) }},
		{"pam.response.text", func(c *Canon, k string) { c.String(k, "SELECT 1") }},
		{"pam.response.truncated", func(c *Canon, k string) { c.Bool(k, true) }},
		{"pam.duration_ms", func(c *Canon, k string) { c.Double(k, 1.5) }},
		{"pam.db.params", func(c *Canon, k string) { c.Strings(k, []string{"a", "b"}) }},
		{"db", func(c *Canon, k string) { c.Null(k) }},
		{"db.query.text", func(c *Canon, k string) { c.String(k, "select 1") }},
		{"db.query.text\x00x", func(c *Canon, k string) { c.String(k, "") }},
	}
	build := func(order []int) (*Canon, Hash) {
		c := &Canon{}
		c.Header("pam.db.query", "select 1", "INFO", 1, 2)
		for _, i := range order {
			attrs[i].add(c, attrs[i].key)
		}
		return c, c.Link(Genesis(Current, "s1"), Hash{})
	}
	order := make([]int, len(attrs))
	for i := range order {
		order[i] = i
	}
	want, wantLink := build(order)
	for range 50 {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		got, link := build(order)
		if string(got.Bytes()) != string(want.Bytes()) || link != wantLink {
			t.Fatalf("order %v changes the canonical form", order)
		}
	}
	key := func(i int) string { return want.spans[want.order[i]].key }
	for i := 1; i < len(want.order); i++ {
		if a, b := key(i-1), key(i); a >= b {
			t.Fatalf("keys out of order: %q before %q", a, b)
		}
	}
	c := &Canon{}
	c.Header("pam.db.query", "select 2", "INFO", 1, 2)
	for _, i := range order {
		attrs[i].add(c, attrs[i].key)
	}
	if c.Link(Genesis(Current, "s1"), Hash{}) == wantLink {
		t.Fatal("a different body gives the same link")
	}
}

// TestCanonReusedAcrossShapes: a Canon reused for records of different
// shapes (same keys, other arrival orders, fewer or more keys, a repeated
// key) gives what a fresh Canon gives for each: the order kept from the
// previous record never leaks into the next.
func TestCanonReusedAcrossShapes(t *testing.T) {
	type entry struct{ key, value string }
	records := []struct {
		name    string
		entries []entry
	}{
		{"query", []entry{{"session.id", "s"}, {"user.name", "u"}, {"db.query.text", "select 1"}, {"pam.seq", "1"}, {"pam.db.command_tag", "SELECT 1"}}},
		{"same keys, same order", []entry{{"session.id", "s"}, {"user.name", "u"}, {"db.query.text", "select 2"}, {"pam.seq", "2"}, {"pam.db.command_tag", "SELECT 1"}}},
		{"same keys, another order", []entry{{"pam.seq", "3"}, {"session.id", "s"}, {"pam.db.command_tag", "SELECT 1"}, {"user.name", "u"}, {"db.query.text", "select 3"}}},
		{"same count, other keys", []entry{{"session.id", "s"}, {"user.name", "u"}, {"pam.ssh.command", "ls"}, {"pam.seq", "4"}, {"pam.ssh.channel", "exec"}}},
		{"one key fewer", []entry{{"session.id", "s"}, {"user.name", "u"}, {"pam.seq", "5"}, {"pam.ssh.command", "ls"}}},
		{"shared 8-byte prefixes", []entry{{"pam.db.params", "p"}, {"pam.db.columns", "c"}, {"pam.db.command_tag", "t"}, {"pam.db.client_encoding", "e"}, {"pam.db.copy.bytes", "b"}}},
		{"a key twice", []entry{{"pam.seq", "6"}, {"a", "first"}, {"pam.seq", "7"}, {"a", "second"}, {"b", "x"}}},
		{"a key twice, again", []entry{{"pam.seq", "6"}, {"a", "first"}, {"pam.seq", "7"}, {"a", "second"}, {"b", "x"}}},
		{"empty", nil},
		{"one", []entry{{"x", "y"}}},
	}
	build := func(c *Canon, entries []entry) Hash {
		c.Reset(Current)
		c.Header("e", "b", "INFO", 1, 2)
		for _, e := range entries {
			c.String(e.key, e.value)
		}
		return c.Link(Genesis(Current, "s"), Hash{})
	}
	reused := &Canon{}
	for range 2 {
		for _, rec := range records {
			fresh := &Canon{}
			want := build(fresh, rec.entries)
			if got := build(reused, rec.entries); got != want || string(reused.Bytes()) != string(fresh.Bytes()) {
				t.Fatalf("%s: a reused Canon gives\n%q\nwant\n%q", rec.name, reused.Bytes(), fresh.Bytes())
			}
		}
	}
}

// TestLinkCoversSessionAndVersion: a link covers the session digest, so a
// record whose session constants changed no longer links; the digest covers
// each constant's key, type and value; the two versions' genesis links and
// link forms differ, so neither can pass for the other.
func TestLinkCoversSessionAndVersion(t *testing.T) {
	digest := func(add func(c *Canon)) Hash {
		c := &Canon{}
		c.String("session.id", "s")
		add(c)
		return c.SessionDigest()
	}
	digests := map[string]Hash{
		"user alice":       digest(func(c *Canon) { c.String("user.name", "alice") }),
		"user mallory":     digest(func(c *Canon) { c.String("user.name", "mallory") }),
		"no user":          digest(func(*Canon) {}),
		"port 5000":        digest(func(c *Canon) { c.Int("client.port", 5000) }),
		"port as a string": digest(func(c *Canon) { c.String("client.port", "5000") }),
		"another key":      digest(func(c *Canon) { c.String("pam.account", "alice") }),
		"user, then port":  digest(func(c *Canon) { c.String("user.name", "alice"); c.Int("client.port", 5000) }),
		"port, then user":  digest(func(c *Canon) { c.Int("client.port", 5000); c.String("user.name", "alice") }),
	}
	if digests["user, then port"] != digests["port, then user"] {
		t.Fatal("the session digest depends on the order the constants were added")
	}
	delete(digests, "port, then user")
	record := &Canon{}
	record.Header("pam.db.query", "select 1", "INFO", 1, 2)
	record.Int("pam.seq", 1)
	prev := Genesis(Current, "s")
	links := map[Hash]string{record.LinkV1(prev): "version 1"}
	for name, d := range digests {
		l := record.Link(prev, d)
		if other, ok := links[l]; ok {
			t.Errorf("%s and %s give the same link", name, other)
		}
		links[l] = name
	}
	if Genesis(V1, "s") == Genesis(V2, "s") || Genesis(V2, "s") == Genesis(V2, "t") {
		t.Fatal("genesis links do not tell versions and sessions apart")
	}
}

// TestBodyReference: from version 3 a string attribute equal to the
// (non-empty) body is a reference to it, so the text is hashed once; the
// reference still binds the attribute to the body (changing either changes
// the link), and versions 1 and 2 keep the full value.
func TestBodyReference(t *testing.T) {
	const text = "select abalance from pgbench_accounts where aid = 1"
	build := func(v Version, body, attr string) *Canon {
		c := &Canon{}
		c.Reset(v)
		c.Header("pam.db.query", body, "INFO", 1, 2)
		c.String("db.query.text", attr)
		c.Strings("pam.db.params", []string{"x"})
		return c
	}
	link := func(c *Canon) Hash { return c.Link(Genesis(V3, "s"), Hash{}) }
	ref := build(V3, text, text)
	// The reference replaces the value and its one-byte length; the keys
	// are in the shape digest, not spelled out.
	other := strings.ToUpper(text)
	if got, full := len(ref.Bytes()), len(build(V3, text, other).Bytes()); got != full-len(text)-1 {
		t.Fatalf("version 3 canonical form with a reference is %d bytes, want %d (%d less the repeated text)", got, full-len(text)-1, full)
	}
	if n := bytes.Count(ref.Bytes(), []byte(text)); n != 1 {
		t.Fatalf("the text is hashed %d times in %q", n, ref.Bytes())
	}
	if bytes.Contains(ref.Bytes(), []byte("db.query.text")) || !bytes.Contains(build(V2, text, text).Bytes(), []byte("db.query.text")) {
		t.Fatal("keys are spelled out in version 3 or left out of version 2")
	}
	tests := []struct {
		name       string
		c          *Canon
		sameAsBody bool
	}{
		{"the zero Canon is the current version", func() *Canon {
			c := &Canon{}
			c.Header("pam.db.query", text, "INFO", 1, 2)
			c.String("db.query.text", text)
			c.Strings("pam.db.params", []string{"x"})
			return c
		}(), true},
		{"attribute changed, body kept", build(V3, text, text+" "), false},
		{"body changed, attribute kept", build(V3, text+" ", text), false},
		{"both changed alike", build(V3, text+" ", text+" "), false},
		{"version 2", build(V2, text, text), false},
		{"version 1", build(V1, text, text), false},
		{"empty body and attribute", build(V3, "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if same := link(tt.c) == link(ref); same != tt.sameAsBody {
				t.Fatalf("same link as the referencing record: %v, want %v", same, tt.sameAsBody)
			}
		})
	}
	// db.query.text "" then pam.db.params ["x"]: an empty string is a value.
	if empty := build(V3, "", ""); !bytes.HasSuffix(empty.Bytes(), []byte("s\x00a\x01\x01x")) {
		t.Fatalf("an empty string refers to an empty body: %q", empty.Bytes())
	}
}

// frozenV3 is TestFrozenLinks' version-3 link.
const frozenV3 = "6421f2ddda110a156ed9f1dcc79cc9d911531912a7bbccafb10438a2341f6277"

// TestIndependentVerifier: testdata/link_v3.py, written from SCHEMA.md's
// description with no pamtrail code, computes the same version-3 link as
// the recorder, so the description is complete.
func TestIndependentVerifier(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	out, err := exec.Command(python, "testdata/link_v3.py").CombinedOutput()
	if err != nil {
		t.Fatalf("link_v3.py: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != frozenV3 {
		t.Fatalf("SCHEMA.md's description gives %s, the recorder %s", got, frozenV3)
	}
}

// TestFrozenLinks: links of every version for one fixed record. Versions 1
// and 2 are what gateways of those versions wrote (computed by their code),
// so sessions they recorded keep verifying; version 3 is pinned so that a
// change to its form cannot pass unnoticed.
func TestFrozenLinks(t *testing.T) {
	record := func(v Version) *Canon {
		c := &Canon{}
		c.Reset(v)
		c.Header("pam.db.query", "select 1", "INFO", 1764800000123, 1764800000124)
		c.String("db.query.text", "select 1")
		c.Int("pam.seq", 7)
		c.Double("pam.duration_ms", 0.25)
		c.Bool("pam.response.truncated", true)
		c.Strings("pam.db.columns", []string{"n", "note"})
		c.Null("pam.x")
		c.String("a", "é")
		return c
	}
	var s Canon
	s.String("session.id", "s1")
	s.Int("client.port", 5000)
	session := s.SessionDigest()
	tests := []struct {
		name string
		got  Hash
		want string
	}{
		{"session digest", session, "b292def6b28ab6f93557d772b26d3b9d70ef7472ff41007017769678a755c8ce"},
		{"version 1", record(V1).LinkV1(Genesis(V1, "s1")), "4ba0bf214bfbd07942fc1019f4ce802f93adb8fb93f0d42d3915c82aaa104612"},
		{"version 2", record(V2).Link(Genesis(V2, "s1"), session), "f4d87c96114bc51f8712996964c92b5d930cdbb4280e14f00f1db7b68c2f5c1d"},
		{"version 3", record(V3).Link(Genesis(V3, "s1"), session), frozenV3},
	}
	for _, tt := range tests {
		if tt.got.String() != tt.want {
			t.Errorf("%s: link %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}
