package review

import (
	"testing"

	"go.uber.org/goleak"
)

// Follow runs timers and the Elasticsearch client keeps connections: both
// must be gone when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
