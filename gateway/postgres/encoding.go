package postgres

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/transform"
)

// A session's text arrives in its client_encoding: the server converts
// everything it sends, and expects everything it receives, in it. Records
// must be UTF-8, so every text field is decoded on the way in.

// charset is a PostgreSQL client encoding.
type charset struct {
	name string            // PostgreSQL's canonical name, e.g. "LATIN9"
	enc  encoding.Encoding // nil: UTF8, SQL_ASCII and encodings x/text lacks, read as UTF-8
}

var utf8Charset = charset{name: "UTF8"}

// encodings maps PostgreSQL's canonical names to decoders.
var encodings = map[string]encoding.Encoding{
	"UTF8": nil, "SQL_ASCII": nil,
	"LATIN1": charmap.ISO8859_1, "LATIN2": charmap.ISO8859_2, "LATIN3": charmap.ISO8859_3,
	"LATIN4": charmap.ISO8859_4, "LATIN5": charmap.ISO8859_9, "LATIN6": charmap.ISO8859_10,
	"LATIN7": charmap.ISO8859_13, "LATIN8": charmap.ISO8859_14, "LATIN9": charmap.ISO8859_15,
	"LATIN10":    charmap.ISO8859_16,
	"ISO_8859_5": charmap.ISO8859_5, "ISO_8859_6": charmap.ISO8859_6,
	"ISO_8859_7": charmap.ISO8859_7, "ISO_8859_8": charmap.ISO8859_8,
	"WIN866": charmap.CodePage866, "WIN874": charmap.Windows874,
	"WIN1250": charmap.Windows1250, "WIN1251": charmap.Windows1251, "WIN1252": charmap.Windows1252,
	"WIN1253": charmap.Windows1253, "WIN1254": charmap.Windows1254, "WIN1255": charmap.Windows1255,
	"WIN1256": charmap.Windows1256, "WIN1257": charmap.Windows1257, "WIN1258": charmap.Windows1258,
	"KOI8R": charmap.KOI8R, "KOI8U": charmap.KOI8U,
	// The JIS X 0213 variants are read as their JIS X 0208 bases: the
	// characters only 0213 has come out as U+FFFD, flagged lossy.
	"SJIS": japanese.ShiftJIS, "SHIFT_JIS_2004": japanese.ShiftJIS,
	"EUC_JP": japanese.EUCJP, "EUC_JIS_2004": japanese.EUCJP,
	"EUC_KR": korean.EUCKR, "UHC": korean.EUCKR,
	"EUC_CN": simplifiedchinese.GBK, "GBK": simplifiedchinese.GBK, "GB18030": simplifiedchinese.GB18030,
	"BIG5": traditionalchinese.Big5,
	// EUC_TW, JOHAB and MULE_INTERNAL have no decoder: non-ASCII text in
	// them is recorded lossy.
	"EUC_TW": nil, "JOHAB": nil, "MULE_INTERNAL": nil,
}

// encodingAliases maps PostgreSQL's other spellings (encnames.c), cleaned
// as PostgreSQL cleans them, to canonical names.
var encodingAliases = map[string]string{
	"abc": "WIN1258", "alt": "WIN866", "koi8": "KOI8R", "mskanji": "SJIS", "shiftjis": "SJIS",
	"tcvn": "WIN1258", "tcvn5712": "WIN1258", "vscii": "WIN1258", "unicode": "UTF8", "win": "WIN1251",
	"iso88591": "LATIN1", "iso88592": "LATIN2", "iso88593": "LATIN3", "iso88594": "LATIN4",
	"iso88599": "LATIN5", "iso885910": "LATIN6", "iso885913": "LATIN7", "iso885914": "LATIN8",
	"iso885915": "LATIN9", "iso885916": "LATIN10",
	"win932": "SJIS", "windows932": "SJIS", "win936": "GBK", "windows936": "GBK",
	"win949": "UHC", "windows949": "UHC", "win950": "BIG5", "windows950": "BIG5",
}

// cleanEncodingName lowercases name and drops everything but letters and
// digits, as PostgreSQL's clean_encoding_name does.
func cleanEncodingName(name string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

var cleanedEncodings = func() map[string]string {
	m := make(map[string]string, len(encodings)+len(encodingAliases))
	for name := range encodings {
		m[cleanEncodingName(name)] = name
	}
	for alias, name := range encodingAliases {
		m[alias] = name
	}
	for n := 866; n <= 1258; n++ { // windows1252 is win1252
		if name, ok := m["win"+strconv.Itoa(n)]; ok {
			m["windows"+strconv.Itoa(n)] = name
		}
	}
	return m
}()

// lookupCharset returns the encoding PostgreSQL would understand by name;
// ok is false for names PostgreSQL would refuse ("auto" is resolved by the
// client before it is sent).
func lookupCharset(name string) (charset, bool) {
	canonical, ok := cleanedEncodings[cleanEncodingName(name)]
	if !ok {
		return charset{}, false
	}
	return charset{name: canonical, enc: encodings[canonical]}, true
}

// decoder decodes one direction's text to UTF-8 and remembers whether any
// conversion so far was lossy.
type decoder struct {
	cs    charset
	lossy bool
}

// text decodes a complete text.
func (d *decoder) text(b []byte) string {
	s, _ := d.decode(b, true)
	return s
}

// prefix decodes the first bytes of a text that was cut: a character the
// cut split is dropped rather than recorded as undecodable.
func (d *decoder) prefix(b []byte) string {
	s, _ := d.decode(b, false)
	return s
}

func (d *decoder) decode(b []byte, atEOF bool) (string, bool) {
	if d.cs.name == utf8Charset.name && atEOF {
		// The hot path costs what it did before decoding existed: a
		// copy. Invalid UTF-8 (which the server refuses anyway) is
		// replaced and flagged by the recorder, which validates every
		// field once whatever the engine.
		return string(b), false
	}
	if d.cs.enc == nil {
		if utf8.Valid(b) {
			return string(b), false
		}
		if !atEOF {
			b = trimPartialRune(b)
		}
		s := strings.ToValidUTF8(string(b), "\uFFFD")
		d.lossy = d.lossy || s != string(b)
		return s, s != string(b)
	}
	if isASCII(b) {
		return string(b), false
	}
	dst := make([]byte, len(b)*3+8)
	n, _, err := d.cs.enc.NewDecoder().Transform(dst, b, atEOF)
	if err != nil && err != transform.ErrShortSrc {
		// Not expected from these decoders, which replace what they
		// cannot decode; keep the text readable anyway.
		d.lossy = true
		return strings.ToValidUTF8(string(b), "\uFFFD"), true
	}
	out := dst[:n]
	// None of these encodings can express U+FFFD itself, so every one in
	// the output stands for undecodable bytes.
	lossy := bytes.ContainsRune(out, utf8.RuneError)
	d.lossy = d.lossy || lossy
	return string(out), lossy
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
