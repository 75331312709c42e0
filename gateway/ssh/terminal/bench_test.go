package terminal

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkTrackerOutput is the cost of following a terminal's output
// (`cat` of a large text file in a shell): the emulator and the text
// collector see every byte, so this bounds an interactive session's rate.
// The gateway hands the Tracker what queued up while it was busy in one
// call, so under load the chunks grow toward the larger size.
func BenchmarkTrackerOutput(b *testing.B) {
	line := strings.Repeat("lorem ipsum \x1b[1mdolor\x1b[0m sit amet ", 2) + "\r\n"
	for _, size := range []int{32 << 10, 1 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			chunk := []byte(strings.Repeat(line, size/len(line)))
			tr := New(Options{Width: 120, Height: 40})
			defer tr.Close()
			tr.Output([]byte("$ "))
			tr.Input([]byte("cat big.txt\r"))
			tr.Output([]byte("cat big.txt\r\n"))
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				tr.Output(chunk)
			}
		})
	}
}
