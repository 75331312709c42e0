// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package state // import "github.com/pamtrail/pamtrail/collector-components/processor/sessionprocessor/internal/state"

import "sort"

// SeqRange is the closed range of seqs [From, To].
type SeqRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// SeqSet is a sorted list of disjoint, non-adjacent ranges. A session's seqs
// arrive mostly in order, so the set is one range or a few, however long the
// session runs.
type SeqSet []SeqRange

// Contains reports whether seq is in the set.
func (s SeqSet) Contains(seq int64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].To >= seq })
	return i < len(s) && s[i].From <= seq
}

// Add inserts seq and reports whether it was new.
func (s *SeqSet) Add(seq int64) bool {
	set := *s
	i := sort.Search(len(set), func(i int) bool { return set[i].To >= seq-1 })
	switch {
	case i < len(set) && set[i].From <= seq && seq <= set[i].To:
		return false
	case i < len(set) && set[i].To == seq-1:
		set[i].To = seq
		if i+1 < len(set) && set[i+1].From == seq+1 { // joins the next range
			set[i].To = set[i+1].To
			set = append(set[:i+1], set[i+2:]...)
		}
	case i < len(set) && set[i].From == seq+1:
		set[i].From = seq
	default:
		set = append(set, SeqRange{})
		copy(set[i+1:], set[i:])
		set[i] = SeqRange{From: seq, To: seq}
	}
	*s = set
	return true
}

// Len is the number of seqs in the set.
func (s SeqSet) Len() int64 {
	var n int64
	for _, r := range s {
		n += r.To - r.From + 1
	}
	return n
}
