package main

import (
	"bytes"
	"encoding/json"
	"iter"
	"maps"
	"strings"
	"time"
)

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstLine is the first line of s, cut to n runes when n > 0.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); n > 0 && len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// pretty indents a JSON payload; anything else is returned as it is.
func pretty(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") == nil {
		return out.String()
	}
	return string(b)
}

func mapsKeys(m map[string]string) iter.Seq[string] { return maps.Keys(m) }
