package interop

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// value is the JSON payload of the test records. ID is there to show that a
// structured CloudEvent's envelope (which has an "id") is not decoded as the payload.
type value struct {
	N  int    `json:"n"`
	ID string `json:"id,omitempty"`
}

func (v value) json() string {
	b, _ := json.Marshal(v)
	return string(b)
}

// record is a record for produce.py.
type record struct {
	Topic     string      `json:"topic"`
	Value     *string     `json:"value"`
	Key       *string     `json:"key"`
	Headers   [][2]string `json:"headers,omitempty"`
	Partition *int32      `json:"partition,omitempty"`
	Timestamp int64       `json:"timestamp,omitempty"`
}

// producer is one librdkafka producer for produce.py: plain records or transactions.
type producer struct {
	Config       map[string]any `json:"config"`
	Records      []record       `json:"records,omitempty"`
	Transactions []transaction  `json:"transactions,omitempty"`
}

type transaction struct {
	Commit  bool     `json:"commit"`
	Records []record `json:"records"`
}

// stored is produce.py's report of one stored record.
type stored struct {
	Producer  int    `json:"producer"`
	Index     int    `json:"index"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
}

// id is the message id pubsubkit gives a record without a watermill id header.
func (s stored) id() string { return fmt.Sprintf("%s-%d-%d", s.Topic, s.Partition, s.Offset) }

// consumed is consume.py's (and kcat's) view of one record.
type consumed struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   [][2]*string `json:"headers"`
}

// key is the record's key, "" when it has none.
func (c consumed) key() string {
	if c.Key == nil {
		return ""
	}
	return *c.Key
}

// value is the record's value, "" when it has none.
func (c consumed) value() string {
	if c.Value == nil {
		return ""
	}
	return *c.Value
}

// header returns the values of the record's header name, in order.
func (c consumed) header(name string) []string {
	var vs []string
	for _, h := range c.Headers {
		if h[0] != nil && *h[0] == name && h[1] != nil {
			vs = append(vs, *h[1])
		}
	}
	return vs
}

// headerNames lists the record's header names.
func (c consumed) headerNames() []string {
	var ns []string
	for _, h := range c.Headers {
		if h[0] != nil {
			ns = append(ns, *h[0])
		}
	}
	slices.Sort(ns)
	return ns
}

func str(s string) *string { return &s }

func part(p int32) *int32 { return &p }

// produceAll runs the producers in one produce.py and returns what was stored.
func produceAll(t testing.TB, producers ...producer) []stored {
	t.Helper()
	return jsonLines[stored](t, python(t, "produce.py", producers))
}

// consumeAll reads count records of topics with consume.py, from the oldest, in a
// group of its own that commits nothing; the test fails when fewer arrive in time.
func consumeAll(t testing.TB, config map[string]any, count int, topics ...string) []consumed {
	t.Helper()
	got := jsonLines[consumed](t, python(t, "consume.py", map[string]any{
		"config": config, "topics": topics, "count": count, "timeout": waitTimeout.Seconds()}))
	if len(got) < count {
		t.Fatalf("consume.py read %d records of %v, want %d", len(got), topics, count)
	}
	return got
}
