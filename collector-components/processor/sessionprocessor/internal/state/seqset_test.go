// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSeqSet(t *testing.T) {
	tests := []struct {
		name string
		add  []int64
		want SeqSet
	}{
		{"in order", []int64{0, 1, 2, 3}, SeqSet{{0, 3}}},
		{"gap then fill", []int64{0, 2, 1}, SeqSet{{0, 2}}},
		{"reverse", []int64{3, 2, 1, 0}, SeqSet{{0, 3}}},
		{"two runs", []int64{0, 1, 5, 6}, SeqSet{{0, 1}, {5, 6}}},
		{"duplicates", []int64{4, 4, 4}, SeqSet{{4, 4}}},
		{"extends a later run downwards", []int64{10, 0, 9}, SeqSet{{0, 0}, {9, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s SeqSet
			for _, seq := range tt.add {
				s.Add(seq)
			}
			assert.Equal(t, tt.want, s)
		})
	}
}

// TestSeqSetMatchesAMap adds random seqs in random order, with repeats, and
// checks membership, novelty and size against a plain map.
func TestSeqSetMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s SeqSet
	seen := map[int64]bool{}
	for range 5000 {
		seq := rng.Int64N(400)
		require.Equal(t, !seen[seq], s.Add(seq), "seq %d", seq)
		seen[seq] = true
	}
	for seq := int64(-1); seq <= 401; seq++ {
		require.Equal(t, seen[seq], s.Contains(seq), "seq %d", seq)
	}
	assert.Equal(t, int64(len(seen)), s.Len())
	for i := 1; i < len(s); i++ {
		require.Greater(t, s[i].From, s[i-1].To+1, "ranges are disjoint and not adjacent")
	}
}
