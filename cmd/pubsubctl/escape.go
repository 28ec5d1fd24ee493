package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// visible is s with every character a terminal could act on written out as an
// escape: C0 controls (\x1b, \a, \r, \t, and \n unless keepNewlines), DEL, C1
// controls (\u009b), the bidirectional overrides (\u202e) and invalid UTF-8 bytes
// (\xff). What a dead letter or a message holds is never written to a terminal as it
// is: an escape sequence in a payload cannot set the title, clear the screen or hide
// a link.
func visible(s string, keepNewlines bool) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || hostile(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && keepNewlines:
			b.WriteByte('\n')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case hostile(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// cell is s for one cell of a table or one line: every control character escaped,
// newlines and tabs too.
func cell(s string) string { return visible(s, false) }

// hostile reports whether a terminal may act on r: a control character (C0, DEL, C1)
// or a bidirectional override or isolate, which reorders what follows.
func hostile(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// jsonSafe rewrites encoded JSON so that it holds no character a terminal acts on:
// encoding/json escapes C0 controls itself, not DEL, the C1 controls or the
// bidirectional overrides, which can only occur inside strings and are written as
// \uXXXX there.
func jsonSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, hostile) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if hostile(r) && r >= 0x20 {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// payloadJSON is a payload as --json prints it: the JSON itself when it is JSON in
// valid UTF-8 (Payload); else the text (PayloadText), exact when the payload is valid
// UTF-8, and when it is not (binary), the bytes in base64 (PayloadBase64) beside a
// lossy text with U+FFFD for each invalid byte.
type payloadJSON struct {
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadText   *string         `json:"payload_text,omitempty"`
	PayloadBase64 string          `json:"payload_base64,omitempty"`
}

func payloadOf(b []byte) payloadJSON {
	valid := utf8.Valid(b)
	if valid && json.Valid(b) {
		return payloadJSON{Payload: b}
	}
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	p := payloadJSON{PayloadText: &text}
	if !valid {
		p.PayloadBase64 = base64.StdEncoding.EncodeToString(b)
	}
	return p
}
