package pubsub

import (
	"sync/atomic"
	"time"

	"github.com/pubsubkit/pubsub/internal/msgid"
	"github.com/pubsubkit/pubsub/metadata"
)

// newID returns a random (version 4) UUID as text (msgid.Format), for message and
// correlation ids.
func newID() string {
	var s [36]byte
	msgid.Format(&s)
	return string(s[:])
}

// newIDAndTime returns a new id and t as metadata writes times (metadata.FormatTime),
// both cut from one string: one allocation for the two values every published message
// carries.
func newIDAndTime(t time.Time) (id, at string) {
	var buf [36 + 40]byte
	msgid.Format((*[36]byte)(buf[:36]))
	b := appendTime(buf[:36], t)
	s := string(b)
	return s[:36], s[36:]
}

// appendIDAndTime appends a new id and then t as newIDAndTime makes them: 36 bytes of
// id, then the time's text.
func appendIDAndTime(b []byte, t time.Time) []byte {
	var id [36]byte
	msgid.Format(&id)
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
