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
		return c, c.Link(Genesis("s1"))
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
	for i := 1; i < len(want.spans); i++ {
		if a, b := want.attrs[want.spans[i-1].keyStart:want.spans[i-1].keyEnd], want.attrs[want.spans[i].keyStart:want.spans[i].keyEnd]; string(a) >= string(b) {
			t.Fatalf("keys out of order: %q before %q", a, b)
		}
	}
	c := &Canon{}
	c.Header("pam.db.query", "select 2", "INFO", 1, 2)
	for _, i := range order {
		attrs[i].add(c, attrs[i].key)
	}
	if c.Link(Genesis("s1")) == wantLink {
		t.Fatal("a different body gives the same link")
	}
}
