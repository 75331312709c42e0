package spool

import (
	"bytes"
	"crypto/cipher"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pamtrail/pamtrail/gateway/internal/testenv"
)

// plaintextAEAD "seals" by copying and appending a zero tag of GCM's size,
// so that the benchmark isolates the cost of encryption. It exists only in
// tests: the product has no plaintext option.
type plaintextAEAD struct{}

func (plaintextAEAD) NonceSize() int { return nonceSize }
func (plaintextAEAD) Overhead() int  { return 16 }
func (plaintextAEAD) Seal(dst, _, plaintext, _ []byte) []byte {
	dst = append(dst, plaintext...)
	return append(dst, make([]byte, 16)...)
}

func (plaintextAEAD) Open(dst, _, ciphertext, _ []byte) ([]byte, error) {
	return append(dst, ciphertext[:len(ciphertext)-16]...), nil
}

type plaintextRing struct{}

func (plaintextRing) CurrentAEAD() (string, cipher.AEAD) { return "plain000", plaintextAEAD{} }
func (plaintextRing) AEAD(id string) (cipher.AEAD, bool) {
	return plaintextAEAD{}, id == "plain000"
}

// BenchmarkAppend measures 1 KiB appends: AES-256-GCM against the
// plaintext stand-in under the default interval policy (each record written
// through to the kernel), and under none (records buffered), from one
// goroutine and from GOMAXPROCS goroutines.
func BenchmarkAppend(b *testing.B) {
	rec := bytes.Repeat([]byte("a"), 1024)
	cases := []struct {
		name  string
		ring  func(b *testing.B) Keyring
		fsync FsyncPolicy
	}{
		{"encrypted/interval", func(b *testing.B) Keyring { return testenv.Keyring(b, 1) }, FsyncInterval},
		{"encrypted/none", func(b *testing.B) Keyring { return testenv.Keyring(b, 1) }, FsyncNone},
		{"plaintext/interval", func(*testing.B) Keyring { return plaintextRing{} }, FsyncInterval},
	}
	for _, c := range cases {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/parallel=%v", c.name, parallel), func(b *testing.B) {
				s, err := Open(b.TempDir(), testOptions(Options{Keys: c.ring(b), Fsync: c.fsync}))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(rec)))
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := s.Append(rec); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for range b.N {
						if _, err := s.Append(rec); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// BenchmarkOpenBacklog measures Open over a large un-uploaded backlog
// (PAMTRAIL_BENCH_BACKLOG_MB, default 256 MiB; the target is 1 GiB in at
// most 3 s). Only the tail segment is read.
func BenchmarkOpenBacklog(b *testing.B) {
	mb := 256
	if v := envInt("PAMTRAIL_BENCH_BACKLOG_MB"); v > 0 {
		mb = v
	}
	dir := b.TempDir()
	ring := testenv.Keyring(b, 1)
	s, err := Open(dir, testOptions(Options{Keys: ring, Fsync: FsyncNone}))
	if err != nil {
		b.Fatal(err)
	}
	rec := bytes.Repeat([]byte("o"), 4096)
	for range mb << 20 / len(rec) {
		if _, err := s.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s, err := Open(dir, testOptions(Options{Keys: ring}))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if st := s.Stats(); st.RecordsPending != uint64(mb<<20/len(rec)) {
			b.Fatalf("pending %d", st.RecordsPending)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(mb), "MiB-backlog")
}

func envInt(name string) int {
	var n int
	_, _ = fmt.Sscan(os.Getenv(name), &n)
	return n
}
