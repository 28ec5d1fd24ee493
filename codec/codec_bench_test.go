package codec_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pubsubkit/pubsub/codec"
)

type benchOrder struct {
	ID       string   `json:"id"`
	Customer string   `json:"customer"`
	Total    int      `json:"total"`
	Tags     []string `json:"tags"`
	Note     string   `json:"note"`
}

// BenchmarkCodec encodes and decodes one payload of about 100 B and one of about
// 1 KiB with each codec: the per-message cost the codec adds to Publish and to a
// handler's decode step. go test -run '^$' -bench Codec -benchmem ./codec
func BenchmarkCodec(b *testing.B) {
	for _, size := range []int{100, 1024} {
		order := benchOrder{ID: "o-1", Customer: "ada", Total: 1250, Tags: []string{"a", "b"}, Note: strings.Repeat("n", max(0, size-80))}
		st, err := structpb.NewStruct(map[string]any{"id": "o-1", "customer": "ada", "total": 1250, "note": order.Note})
		if err != nil {
			b.Fatal(err)
		}
		cases := []struct {
			name  string
			c     codec.Codec
			value any
			into  func() any
		}{
			{"json", codec.JSON, order, func() any { return new(benchOrder) }},
			{"protobuf", codec.Protobuf, st, func() any { return new(structpb.Struct) }},
			{"raw", codec.Raw, []byte(strings.Repeat("x", size)), func() any { return new([]byte) }},
		}
		for _, tc := range cases {
			data, err := tc.c.Marshal(tc.value)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(tc.name+"/marshal/"+sizeName(size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := tc.c.Marshal(tc.value); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(tc.name+"/unmarshal/"+sizeName(size), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if err := tc.c.Unmarshal(data, tc.into()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return "1KiB"
	}
	return "100B"
}
