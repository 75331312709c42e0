package rsyncparse

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Transmit flags of a file-list entry (rsync.h XMIT_*), protocol 30+.
const (
	xmitTopDir          = 1 << 0
	xmitSameMode        = 1 << 1
	xmitExtendedFlags   = 1 << 2
	xmitSameUID         = 1 << 3
	xmitSameGID         = 1 << 4
	xmitSameName        = 1 << 5
	xmitLongName        = 1 << 6
	xmitSameTime        = 1 << 7
	xmitSameRdevMajor   = 1 << 8
	xmitHlinked         = 1 << 9
	xmitUserNameFollows = 1 << 10
	xmitGrpNameFollows  = 1 << 11
	xmitHlinkFirst      = 1 << 12
	xmitIOErrorEndList  = 1 << 12 // with xmitExtendedFlags alone: end of list
	xmitModNsec         = 1 << 13
	xmitSameAtime       = 1 << 14
)

// File kinds from the mode's S_IFMT bits.
const (
	modeTypeMask = 0o170000
	modeDir      = 0o040000
	modeRegular  = 0o100000
	modeSymlink  = 0o120000
	modeChar     = 0o020000
	modeBlock    = 0o060000
	modeFIFO     = 0o010000
	modeSocket   = 0o140000
)

// Bounds on what the parser keeps: names as long as rsync's MAXPATHLEN,
// and a limit on the files of the live file lists (incremental recursion
// frees each list once the transfer is past it).
const (
	maxName      = 4096
	maxLiveFiles = 1 << 18
	maxNameBytes = 32 << 20
)

var errTooManyFiles = errors.New("rsync: file list larger than the parser keeps")

// File is one entry of a file list.
type File struct {
	Name string // relative to the transfer root, as the sender names it
	Size int64
	Mode uint32
}

// Regular, Dir and Symlink report the entry's kind.
func (f File) Regular() bool { return f.Mode&modeTypeMask == modeRegular }
func (f File) Dir() bool     { return f.Mode&modeTypeMask == modeDir }
func (f File) Symlink() bool { return f.Mode&modeTypeMask == modeSymlink }

// flist is one file list as the receiver indexes it: sorted, with global
// indexes from start.
type flist struct {
	start int32
	files []File
}

// entryDecoder decodes send_file_entry()'s output (flist.c). The sender
// elides fields equal to the previous entry's, so that state spans every
// list of the stream.
type entryDecoder struct {
	varintFlags bool // CF_VARINT_FLIST_FLAGS
	incRecurse  bool
	protocol    int32
	sumLen      int // always_checksum: the file-list checksum's length, else 0
	opts        *options

	last entryState
}

type entryState struct {
	name      string
	mode      uint32
	rdevMajor int32
}

// entryResult is one decoded item of a file list.
type entryResult struct {
	end   bool // the end-of-list marker
	file  File
	state entryState
}

// decode reads one entry or the list's end; the decoder's state is left to
// the caller to commit, so a short read can be retried. current is the
// list being received, for hard links to an earlier entry of it.
func (d *entryDecoder) decode(r *reader, current *flist) (entryResult, error) {
	flags, err := d.flags(r)
	if err != nil {
		return entryResult{}, err
	}
	if flags == 0 {
		return entryResult{end: true}, d.endOfList(r)
	}
	if !d.varintFlags && flags == xmitExtendedFlags|xmitIOErrorEndList {
		_, err := r.varint() // the sender's io_error
		return entryResult{end: true}, err
	}
	st := d.last
	var l1 int
	if flags&xmitSameName != 0 {
		l1 = int(r.byte())
	}
	var l2 int
	if flags&xmitLongName != 0 {
		v, err := r.varint()
		if err != nil {
			return entryResult{}, err
		}
		l2 = int(v)
	} else {
		l2 = int(r.byte())
	}
	if r.short {
		return entryResult{}, errShort
	}
	if l1 > len(st.name) || l2 < 0 || l1+l2 > maxName {
		return entryResult{}, fmt.Errorf("rsync: file name of %d+%d bytes (previous %d)", l1, l2, len(st.name))
	}
	suffix := r.take(l2)
	if suffix == nil {
		return entryResult{}, errShort
	}
	st.name = st.name[:l1] + string(suffix)
	f := File{Name: st.name}

	if flags&xmitHlinked != 0 && flags&xmitHlinkFirst == 0 && d.opts.hardLinks {
		first, err := r.varint()
		if err != nil {
			return entryResult{}, err
		}
		if first < 0 {
			return entryResult{}, fmt.Errorf("rsync: hard link to index %d", first)
		}
		if current != nil && first >= current.start {
			// A link to an entry of this list: its attributes are copied
			// and nothing else of this entry is sent.
			i := int(first - current.start)
			if i >= len(current.files) {
				return entryResult{}, fmt.Errorf("rsync: hard link to index %d, beyond the list", first)
			}
			orig := current.files[i]
			f.Size, f.Mode = orig.Size, orig.Mode
			st.mode = orig.Mode
			return entryResult{file: f, state: st}, nil
		}
	}

	if f.Size, err = r.varlong(3); err != nil {
		return entryResult{}, err
	}
	if flags&xmitSameTime == 0 {
		if _, err := r.varlong(4); err != nil {
			return entryResult{}, err
		}
	}
	if flags&xmitModNsec != 0 {
		if _, err := r.varint(); err != nil {
			return entryResult{}, err
		}
	}
	if flags&xmitSameMode == 0 {
		st.mode = uint32(r.int32())
	}
	f.Mode = st.mode
	kind := f.Mode & modeTypeMask
	if d.opts.atimes && kind != modeDir && flags&xmitSameAtime == 0 {
		if _, err := r.varlong(4); err != nil {
			return entryResult{}, err
		}
	}
	if d.opts.uid && flags&xmitSameUID == 0 {
		if err := d.id(r, flags&xmitUserNameFollows != 0); err != nil {
			return entryResult{}, err
		}
	}
	if d.opts.gid && flags&xmitSameGID == 0 {
		if err := d.id(r, flags&xmitGrpNameFollows != 0); err != nil {
			return entryResult{}, err
		}
	}
	device := kind == modeChar || kind == modeBlock
	special := kind == modeFIFO || kind == modeSocket
	if (d.opts.devices && device) || (d.opts.specials && special && d.protocol < 31) {
		if flags&xmitSameRdevMajor == 0 {
			if st.rdevMajor, err = r.varint(); err != nil {
				return entryResult{}, err
			}
		}
		if _, err := r.varint(); err != nil { // minor
			return entryResult{}, err
		}
		f.Size = 0
	}
	if d.opts.links && kind == modeSymlink {
		n, err := r.varint()
		if err != nil {
			return entryResult{}, err
		}
		if n < 0 || n > maxName {
			return entryResult{}, fmt.Errorf("rsync: symlink target of %d bytes", n)
		}
		r.take(int(n))
	}
	if d.sumLen > 0 && kind == modeRegular {
		r.take(d.sumLen)
	}
	if r.short {
		return entryResult{}, errShort
	}
	if f.Size < 0 {
		return entryResult{}, fmt.Errorf("rsync: file size %d", f.Size)
	}
	return entryResult{file: f, state: st}, nil
}

func (d *entryDecoder) flags(r *reader) (int, error) {
	if d.varintFlags {
		v, err := r.varint()
		return int(v), err
	}
	flags := int(r.byte())
	if flags&xmitExtendedFlags != 0 {
		flags |= int(r.byte()) << 8
	}
	if r.short {
		return 0, errShort
	}
	return flags, nil
}

// endOfList reads what follows a zero flags value: with varint flags, the
// sender's io_error.
func (d *entryDecoder) endOfList(r *reader) error {
	if d.varintFlags {
		_, err := r.varint()
		return err
	}
	return nil
}

// id reads a user or group id, and its name when the sender sends names
// inline (incremental recursion).
func (d *entryDecoder) id(r *reader, nameFollows bool) error {
	if _, err := r.varint(); err != nil {
		return err
	}
	if nameFollows {
		r.take(int(r.byte()))
	}
	if r.short {
		return errShort
	}
	return nil
}

// sortFiles orders a received list as the receiver does (f_name_cmp,
// protocol 29+), since the transfer refers to files by their index in that
// order.
func sortFiles(files []File) {
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = sortKey(f)
	}
	idx := make([]int, len(files))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	sorted := make([]File, len(files))
	for i, j := range idx {
		sorted[i] = files[j]
	}
	copy(files, sorted)
}

// sortKey turns a name into a string whose byte order is f_name_cmp's: at
// each depth a non-directory sorts before a directory, directory names
// compare as if they ended in "/", and the top directory "." sorts first.
func sortKey(f File) string {
	if f.Name == "." && f.Dir() {
		return ""
	}
	var b strings.Builder
	parts := strings.Split(f.Name, "/")
	for i, p := range parts {
		if i < len(parts)-1 || f.Dir() {
			b.WriteByte(1)
			b.WriteString(p)
			b.WriteByte('/')
		} else {
			b.WriteByte(0)
			b.WriteString(p)
		}
	}
	return b.String()
}
