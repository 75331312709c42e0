package terminal

import (
	"strings"

	"github.com/charmbracelet/x/vt"
)

// maxLineRows bounds how far up the screen a command line is looked for,
// so a hostile screen cannot make each Enter cost a full-screen scan twice.
const maxLineRows = 64

// screen reads text off the emulator's visible screen.
type screen struct{ emu *vt.Emulator }

// row returns the text of screen row y, one string per cell, so callers can
// cut at a cell column. Wide characters occupy their first cell; the
// continuation cell is an empty string.
func (s screen) row(y int) []string {
	w := s.emu.Width()
	cells := make([]string, w)
	for x := range w {
		c := s.emu.CellAt(x, y)
		switch {
		case c == nil:
			cells[x] = " "
		case c.Content == "" && c.Width == 0:
			cells[x] = "" // second half of a wide character
		case c.Content == "":
			cells[x] = " "
		default:
			cells[x] = c.Content
		}
	}
	return cells
}

// full reports whether row y reaches the last column. The emulator does not
// remember soft wraps, so a row whose last cell holds a character is taken to
// continue on the next row; a space in exactly the last column is the one case
// this misreads.
func (s screen) full(y int) bool {
	c := s.emu.CellAt(s.emu.Width()-1, y)
	return c != nil && c.Content != "" && c.Content != " "
}

// beforeCursor is the text left of the cursor on its row: the prompt, when
// taken as the user starts typing a line.
func (s screen) beforeCursor() string {
	pos := s.emu.CursorPosition()
	cells := s.row(pos.Y)
	x := min(max(pos.X, 0), len(cells))
	return strings.Join(cells[:x], "")
}

// promptRow looks for the row where the line at the cursor starts: the
// nearest row, from the cursor up to floor, that begins with one of the
// prompts. It returns the row and the prompt found there.
func (s screen) promptRow(prompts []string, floor int) (int, string, bool) {
	cur := s.emu.CursorPosition().Y
	if cur < 0 || cur >= s.emu.Height() {
		return 0, "", false
	}
	if floor > cur {
		floor = 0 // the screen was cleared or redrawn since: no floor
	}
	for y := cur; y >= max(floor, cur-maxLineRows+1); y-- {
		text := strings.Join(s.row(y), "")
		best := ""
		for _, p := range prompts {
			if len(p) > len(best) && strings.HasPrefix(text, p) {
				best = p
			}
		}
		if best != "" {
			return y, best, true
		}
	}
	return 0, "", false
}

// wrapTop returns the first row of the run of wrapped rows that ends at the
// cursor's row.
func (s screen) wrapTop() int {
	top := s.emu.CursorPosition().Y
	for top > 0 && s.emu.CursorPosition().Y-top < maxLineRows && s.full(top-1) {
		top--
	}
	return top
}

// lineFrom returns the text from row top down to the cursor row. Rows that
// wrapped are joined as they are; rows that ended early are joined with a
// newline, which is how a multi-line paste shows up. The last row runs to
// column endX (where the cursor was before the shell's CR) or its last
// character, whichever is further right, so the spaces a user typed at the
// end of a line are kept.
func (s screen) lineFrom(top, endX int) string {
	pos := s.emu.CursorPosition()
	var b strings.Builder
	for y := top; y <= pos.Y; y++ {
		cells := s.row(y)
		if y < pos.Y {
			if s.full(y) {
				b.WriteString(strings.Join(cells, ""))
			} else {
				b.WriteString(strings.TrimRight(strings.Join(cells, ""), " "))
				b.WriteByte('\n')
			}
			continue
		}
		end := min(max(endX, 0), len(cells))
		for x := len(cells) - 1; x >= end; x-- {
			if cells[x] != " " && cells[x] != "" {
				end = x + 1
				break
			}
		}
		b.WriteString(strings.Join(cells[:end], ""))
	}
	return b.String()
}
