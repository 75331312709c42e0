// Copyright The pamtrail Authors
// SPDX-License-Identifier: Apache-2.0

package encryptedstorage

import (
	"testing"

	"go.uber.org/goleak"
)

// The wrapped file_storage may start compaction goroutines; every test must
// leave none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
