package pubsub

import (
	"encoding/hex"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pubsubkit/pubsub/metadata"
)

// newID returns a random (version 4) UUID as text, for message and correlation ids.
// It draws from the runtime's ChaCha8 generator, which is seeded from the operating
// system and needs no lock or system call per id.
func newID() string {
	var s [36]byte
	formatID(&s)
	return string(s[:])
}

// newIDAndTime returns a new id and t as metadata writes times (metadata.FormatTime),
// both cut from one string: one allocation for the two values every published message
// carries.
func newIDAndTime(t time.Time) (id, at string) {
	var buf [36 + 40]byte
	formatID((*[36]byte)(buf[:36]))
	b := appendTime(buf[:36], t)
	s := string(b)
	return s[:36], s[36:]
}

// appendIDAndTime appends a new id and then t as newIDAndTime makes them: 36 bytes of
// id, then the time's text.
func appendIDAndTime(b []byte, t time.Time) []byte {
	var id [36]byte
	formatID(&id)
	return appendTime(append(b, id[:]...), t)
}

// appendTime appends t as metadata.AppendTime does (RFC 3339 in UTC with nanoseconds,
// trailing zeros of the fraction dropped), formatting the date and the clock only when
// the second changes: the publishes of one second share that text (lastSecond).
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	st := lastSecond.Load()
	if st == nil || st.sec != sec {
		if y := t.Year(); y < 0 || y > 9999 {
			return metadata.AppendTime(b, t) // a year of other than four digits
		}
		st = &secondText{sec: sec}
		t.AppendFormat(st.text[:0], "2006-01-02T15:04:05")
		lastSecond.Store(st)
	}
	b = append(b, st.text[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		var f [10]byte
		f[0] = '.'
		for i := 9; i > 0; i-- {
			f[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := len(f)
		for f[n-1] == '0' {
			n--
		}
		b = append(b, f[:n]...)
	}
	return append(b, 'Z')
}

// secondText is one second (Unix time) as appendTime writes it, up to the fraction.
type secondText struct {
	sec  int64
	text [len("2006-01-02T15:04:05")]byte
}

// lastSecond is the second appendTime formatted last.
var lastSecond atomic.Pointer[secondText]

// formatID writes a random version 4 UUID into s.
func formatID(s *[36]byte) {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
}
