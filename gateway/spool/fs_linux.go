//go:build linux

package spool

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errPreallocUnsupported = errors.New("preallocation not supported")

// fallocate reserves disk blocks for [off, off+n) without changing the file
// size (FALLOC_FL_KEEP_SIZE): readers and recovery see only written data,
// while later writes into the range cannot fail for lack of space.
func fallocate(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return errPreallocUnsupported
	}
	return err
}

// lockDir takes an exclusive, non-blocking lock so that two gateways never
// share one spool directory.
func lockDir(f *os.File) error {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
}
