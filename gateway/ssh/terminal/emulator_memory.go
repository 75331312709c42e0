package terminal

import (
	"reflect"
	"unsafe"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
)

// emulatorDataBytes bounds the emulator parser's buffer for the payload of
// OSC, DCS and APC strings (window titles, clipboard, images). vt gives
// every emulator a 4 MiB buffer, which would make each interactive session
// cost over 4 MiB of gateway memory; command lines never come from these
// strings, so a longer one is simply cut for our screen.
const emulatorDataBytes = 64 << 10

// shrinkParserBuffer replaces the 4 MiB buffer vt.NewEmulator gives its
// parser. vt does not expose the parser, so it is reached through its one
// unexported field; if a vt release renames or retypes that field nothing
// happens, and TestTrackerMemoryPerSession fails to say so.
func shrinkParserBuffer(emu *vt.Emulator) bool {
	f := reflect.ValueOf(emu).Elem().FieldByName("parser")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*ansi.Parser]() || f.IsNil() {
		return false
	}
	p := (*ansi.Parser)(unsafe.Pointer(f.Pointer()))
	p.SetDataSize(emulatorDataBytes)
	return true
}
