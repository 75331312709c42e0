//go:build !linux

package spool

import (
	"errors"
	"os"
)

var errPreallocUnsupported = errors.New("preallocation not supported")

// fallocate is not available: out-of-space then surfaces from the background
// write, which keeps the frames buffered and makes Append refuse.
func fallocate(*os.File, int64, int64) error { return errPreallocUnsupported }

// lockDir is a no-op where flock is not wired up.
func lockDir(*os.File) error { return nil }
