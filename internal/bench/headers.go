package main

import (
	"encoding/hex"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/metadata"
	"github.com/pubsubkit/pubsub/transport/kafka"
)

// The franz-headers rows are raw franz-go writing the record the SDK writes for the
// same value: the payload and the five headers of a publish with the raw codec (a new
// id in kafka.UUIDHeader and as the correlation id, the content type, the type, the
// publish time in RFC 3339 with nanoseconds), each record's id and time made as the
// SDK makes them. They are the ceiling for the SDK's records, not a target: the
// franz-go rows send the payload alone.

// sdkRecord returns the record the SDK writes for body: its header values in one
// buffer, as the SDK's are in one.
func sdkRecord(body []byte) *kgo.Record {
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	buf := make([]byte, 36, 36+30)
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:])
	buf = metadata.AppendTime(buf, time.Now())
	id := buf[:36]
	return &kgo.Record{Value: body, Headers: []kgo.RecordHeader{
		{Key: kafka.UUIDHeader, Value: id},
		{Key: metadata.ContentType, Value: rawContentType},
		{Key: metadata.MessageType, Value: rawTypeName},
		{Key: metadata.PublishedAt, Value: buf[36:]},
		{Key: metadata.CorrelationID, Value: id},
	}}
}

var rawContentType, rawTypeName = []byte("application/octet-stream"), []byte("[]uint8")

func publishFranzHeaders(s spec, m *meter) ([]time.Duration, error) {
	return publishFranzOf(s, m, sdkRecord)
}

func asyncFranzHeaders(s spec, m *meter) ([]time.Duration, error) {
	return asyncFranzOf(s, m, sdkRecord)
}

func batchFranzHeaders(s spec, m *meter) ([]time.Duration, error) {
	return batchFranzOf(s, m, sdkRecord)
}
