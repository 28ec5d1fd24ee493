package main

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pubsubkit/pubsub/internal/msgid"
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
	buf := make([]byte, 36, 36+30)
	msgid.Format((*[36]byte)(buf))
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
