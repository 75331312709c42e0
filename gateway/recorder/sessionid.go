package recorder

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewSessionID returns a unique, sortable session id: a millisecond
// timestamp followed by 64 random bits, so ids from several gateways never
// collide and sort roughly by start time.
func NewSessionID() string {
	var b [14]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}
