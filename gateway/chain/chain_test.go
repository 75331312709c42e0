package chain

import (
	"math/rand/v2"
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
	key := func(i int) string { s := want.spans[want.order[i]]; return string(want.attrs[s.keyStart:s.keyEnd]) }
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
		c.Reset()
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
