// Package msgid writes message ids: random version 4 UUIDs as text, drawn from the
// runtime's ChaCha8 generator (seeded from the operating system, no lock or system
// call per id). The client's ids and the bench tool's copy of the client's record
// both use it.
package msgid

import (
	"encoding/hex"
	"math/rand/v2"
)

// Format writes a random version 4 UUID into s.
func Format(s *[36]byte) {
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
