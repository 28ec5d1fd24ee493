// Package metadata names every message metadata key that pubsubkit reads or writes.
//
// All keys live here, in one place, so that a transport, a middleware, an operator
// reading Kafka headers and a program parsing dead letters agree on them. Keys that
// pubsubkit owns start with "pubsub_"; the correlation id uses Watermill's key and the
// trace context uses the W3C names, so that plain Watermill middleware and other
// OpenTelemetry-instrumented services understand them too.
//
// User metadata set with pubsub.WithMetadata travels beside these keys; a user key that
// collides with one of them is rejected at publish time.
package metadata

import (
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// CorrelationID is the conversation id shared by every message of one flow. It is
	// the key Watermill's own CorrelationID middleware uses.
	CorrelationID = "correlation_id"

	// TraceParent and TraceState carry the W3C trace context of the publishing span.
	TraceParent = "traceparent"
	TraceState  = "tracestate"

	// Prefix starts every key that pubsubkit owns.
	Prefix = "pubsub_"

	// ContentType is the payload's media type, for example "application/json": the
	// standard header that Kafka clients and the CloudEvents binding read. Read with
	// ContentTypeOf, which also takes LegacyContentType.
	ContentType = "content-type"
	// LegacyContentType is where pubsubkit before it wrote the content type; it is
	// read, not written.
	LegacyContentType = Prefix + "content_type"
	// MessageType is the Go type of the payload as the publisher named it.
	MessageType = Prefix + "type"
	// PublishedAt is when the publisher created the message, RFC 3339 with nanoseconds.
	PublishedAt = Prefix + "published_at"
	// Key is the partition key; on Kafka it becomes the record key.
	Key = Prefix + "key"
	// Attempt is the 1-based delivery attempt; absent means 1.
	Attempt = Prefix + "attempt"
	// FirstFailure is when the message first failed, RFC 3339 with nanoseconds; set
	// once a message is retried, so the dead letter can say when trouble began.
	FirstFailure = Prefix + "first_failure"
	// RetryDue is when a message moved to a retry topic may be handled again, RFC 3339
	// with nanoseconds.
	RetryDue = Prefix + "retry_due"
	// OriginPartition and OriginOffset locate the original record of a message moved
	// to a retry topic or replayed, so its dead letter points at the original.
	OriginPartition = Prefix + "origin_partition"
	OriginOffset    = Prefix + "origin_offset"
	// Replayed is "true" on a message replayed from a dead-letter topic.
	Replayed = Prefix + "replayed"

	// Dead-letter keys: set on a message published to a dead-letter topic.

	// DeadLetterTopic is the topic the message was consumed from.
	DeadLetterTopic = Prefix + "dlq_topic"
	// DeadLetterGroup is the consumer group that failed the message.
	DeadLetterGroup = Prefix + "dlq_group"
	// DeadLetterPartition and DeadLetterOffset locate the original record, where the
	// transport has them.
	DeadLetterPartition = Prefix + "dlq_partition"
	DeadLetterOffset    = Prefix + "dlq_offset"
	// DeadLetterAttempts is how many attempts were made before dead-lettering.
	DeadLetterAttempts = Prefix + "dlq_attempts"
	// DeadLetterReason is the last error's text, truncated to MaxReasonBytes, with
	// bytes that are not valid UTF-8 replaced (see ValidUTF8).
	DeadLetterReason = Prefix + "dlq_reason"
	// DeadLetterPermanent is "true" when the failure skipped retries (a permanent error,
	// a decode failure).
	DeadLetterPermanent = Prefix + "dlq_permanent"
	// DeadLetterFirstFailure and DeadLetterLastFailure are RFC 3339 times with nanoseconds.
	DeadLetterFirstFailure = Prefix + "dlq_first_failure"
	DeadLetterLastFailure  = Prefix + "dlq_last_failure"
	// DeadLetterMessageID is the id of the original message.
	DeadLetterMessageID = Prefix + "dlq_message_id"
	// DeadLetterPayloadDropped, when set, is the size in bytes of the original
	// payload, which the dead letter does not carry because the dead-letter topic
	// refused a letter that large; the original stays at DeadLetterPartition and
	// DeadLetterOffset of DeadLetterTopic.
	DeadLetterPayloadDropped = Prefix + "dlq_payload_dropped"

	// CloudEvents keys (the Kafka protocol binding, binary mode): every attribute of
	// an event is a header "ce_<name>"; the content type is ContentType. Decode also
	// reads a structured-mode event (content type StructuredCloudEvent) into these
	// keys, so a handler reads both modes the same way.
	CloudEventsPrefix = "ce_"
	CloudEventsID     = CloudEventsPrefix + "id"
	CloudEventsSource = CloudEventsPrefix + "source"
	CloudEventsType   = CloudEventsPrefix + "type"
	CloudEventsSpec   = CloudEventsPrefix + "specversion"
	CloudEventsTime   = CloudEventsPrefix + "time"
	CloudEventsKey    = CloudEventsPrefix + "partitionkey"
	// CloudEventsTraceParent and CloudEventsTraceState are the CloudEvents
	// distributed-tracing extension: the W3C trace context as event attributes.
	CloudEventsTraceParent = CloudEventsPrefix + "traceparent"
	CloudEventsTraceState  = CloudEventsPrefix + "tracestate"
	StructuredCloudEvent   = "application/cloudevents+json"

	// Knative's error extensions, on a dead letter of a CloudEvent: where it was going,
	// a status code and the error, as a Knative broker writes them to its dead-letter
	// sink.
	KnativeErrorDest = CloudEventsPrefix + "knativeerrordest"
	KnativeErrorCode = CloudEventsPrefix + "knativeerrorcode"
	KnativeErrorData = CloudEventsPrefix + "knativeerrordata"

	// Resolution keys: set on the records of a subscription's resolution topic
	// ("<dead-letter topic>.resolved"), which say that a dead letter was replayed or
	// discarded, by whom and why. Consumers of the dead-letter topic never meet them.

	// Resolution is "replayed" or "discarded".
	Resolution = Prefix + "resolution"
	// ResolvedID and ResolvedFailure name the dead letter resolved: its message id and
	// its DeadLetterLastFailure.
	ResolvedID      = Prefix + "resolved_id"
	ResolvedFailure = Prefix + "resolved_failure"
	// ResolvedTopic and ResolvedGroup are the subscription of the dead letter.
	ResolvedTopic = Prefix + "resolved_topic"
	ResolvedGroup = Prefix + "resolved_group"
	// ResolvedAt, ResolvedBy and ResolvedNote say when, by whom and why.
	ResolvedAt   = Prefix + "resolved_at"
	ResolvedBy   = Prefix + "resolved_by"
	ResolvedNote = Prefix + "resolved_note"
	// ReplayEdited is "true" on a replay whose payload an operator changed.
	ReplayEdited = Prefix + "replay_edited"
)

// bookkeeping are the keys a subscription writes on its own retry and replay topics
// to keep count.
var bookkeeping = []string{Attempt, FirstFailure, RetryDue, OriginPartition, OriginOffset, Replayed, ReplayEdited}

// DropBookkeeping deletes from md the keys a subscription writes on its own retry and
// replay topics (Attempt, FirstFailure, RetryDue, OriginPartition, OriginOffset,
// Replayed, ReplayEdited): a record on a topic any producer writes must not bring them, or a forged
// attempt would skip the retries and a forged due time would stall a retry topic.
func DropBookkeeping(md map[string]string) {
	for _, k := range bookkeeping {
		delete(md, k)
	}
}

// DeadLetterPrefix starts every dead-letter key (DeadLetterReason, DeadLetterTopic...,
// and the DeadLetterOriginPrefix keys).
const DeadLetterPrefix = Prefix + "dlq_"

// DropDeadLetterKeys deletes from md every key that starts with DeadLetterPrefix. A
// record on a topic that is not a dead-letter topic comes from any producer: forged
// dead-letter keys must not reach its handler nor be kept as the origin of its own
// dead letter.
func DropDeadLetterKeys(md map[string]string) {
	for k := range md {
		if strings.HasPrefix(k, DeadLetterPrefix) {
			delete(md, k)
		}
	}
}

// DeadLetterOriginPrefix names the keys that keep a message's first dead letter when
// it is dead-lettered again (a consumer of a dead-letter topic failed it): its
// dead-letter keys with this prefix instead of Prefix+"dlq_", such as
// "pubsub_dlq_origin_reason" and "pubsub_dlq_origin_topic".
const DeadLetterOriginPrefix = Prefix + "dlq_origin_"

// deadLetterKeys are the keys a dead letter gets, which KeepOrigin keeps.
var deadLetterKeys = []string{DeadLetterTopic, DeadLetterGroup, DeadLetterPartition, DeadLetterOffset,
	DeadLetterAttempts, DeadLetterReason, DeadLetterPermanent, DeadLetterFirstFailure, DeadLetterLastFailure,
	DeadLetterMessageID}

// KeepOrigin copies md's dead-letter keys to their DeadLetterOriginPrefix names when
// md is a dead letter and holds no origin yet, so that a dead letter dead-lettered
// again keeps its first reason and origin.
func KeepOrigin(md map[string]string) {
	if md[DeadLetterReason] == "" && md[DeadLetterTopic] == "" {
		return
	}
	if _, kept := md[DeadLetterOriginPrefix+"reason"]; kept {
		return
	}
	for _, k := range deadLetterKeys {
		if v, ok := md[k]; ok {
			md[DeadLetterOriginPrefix+strings.TrimPrefix(k, Prefix+"dlq_")] = v
		}
	}
}

// MaxReasonBytes is the longest error text stored in DeadLetterReason, "…" included; a
// longer text is cut at a UTF-8 boundary and ends with "…".
const MaxReasonBytes = 4096

// Reserved reports whether key is owned by pubsubkit, so a user may not set it.
func Reserved(key string) bool {
	return strings.HasPrefix(key, Prefix) || strings.HasPrefix(key, CloudEventsPrefix) ||
		key == CorrelationID || key == TraceParent || key == TraceState || key == ContentType
}

// ContentTypeOf returns the content type md gives, from ContentType or, for messages
// of earlier pubsubkit versions, LegacyContentType.
func ContentTypeOf(md map[string]string) string {
	if ct := md[ContentType]; ct != "" {
		return ct
	}
	return md[LegacyContentType]
}

// MediaType is a content type without its parameters, lower case:
// "application/json; charset=utf-8" is "application/json".
func MediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// IsMediaType reports whether contentType has the media type mediaType (lower case,
// no parameters), as MediaType(contentType) == mediaType does, without making the
// lower-case copy: it is called for every consumed message.
func IsMediaType(contentType, mediaType string) bool {
	ct := trimBlanks(contentType)
	if len(ct) < len(mediaType) || !strings.EqualFold(ct[:len(mediaType)], mediaType) {
		return false
	}
	rest := trimBlanks(ct[len(mediaType):])
	return rest == "" || rest[0] == ';'
}

// trimBlanks drops the spaces and tabs s begins with (strings.TrimLeft with a
// two-byte cut set builds a set on every call, 3% of a consumed message's CPU here).
func trimBlanks(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// ForHandler reports whether a handler sees key in its Message.Metadata: user keys,
// the CloudEvents attributes and the dead-letter keys (a subscription to a dead-letter
// topic reads why each letter failed there). pubsubkit's other keys have fields of their own in the
// message (ID, CorrelationID, Key, Attempt, PublishedAt) or are bookkeeping.
func ForHandler(key string) bool {
	return !Reserved(key) || strings.HasPrefix(key, Prefix+"dlq_") || strings.HasPrefix(key, CloudEventsPrefix)
}

// AttemptOf reads the Attempt value v: 1 when absent or malformed.
func AttemptOf(v string) int {
	if v == "" || len(v) > 9 {
		return 1 // absent, or too large to be an attempt (parsing it would allocate an error)
	}
	n := 0
	for i := range len(v) {
		if v[i] < '0' || v[i] > '9' {
			return 1
		}
		n = 10*n + int(v[i]-'0')
	}
	return max(n, 1)
}

// SetCloudEvent makes md the attributes of a binary-mode CloudEvent: specversion
// 1.0, id, source and type.
func SetCloudEvent(md map[string]string, id, source, typ string) {
	md[CloudEventsSpec] = "1.0"
	md[CloudEventsID] = id
	md[CloudEventsSource] = source
	md[CloudEventsType] = typ
}

// FormatTime writes a time for a metadata value: RFC 3339 in UTC with nanoseconds,
// the form of every time key above.
func FormatTime(t time.Time) string { return string(AppendTime(nil, t)) }

// AppendTime appends t to b as FormatTime writes it.
func AppendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, time.RFC3339Nano) }

// ParseTime reads a time written by FormatTime (or any RFC 3339 time); ok is false
// for an empty or malformed value.
func ParseTime(v string) (t time.Time, ok bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

// ValidUTF8 returns s with each run of bytes that is not valid UTF-8 replaced by
// U+FFFD (the replacement character "\uFFFD"): s itself when it is valid. Header
// values that pubsubkit writes from text it does not control (an error's text as a
// dead letter's reason and Knative error data, an operator's note, a value given to
// WithMetadata or WithCorrelationID) go through it, because Kafka clients read header
// values as UTF-8 (Python's decode raises on invalid bytes, Java replaces them) and the
// CloudEvents binding requires it.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Reason is an error's text as a dead letter records it: valid UTF-8 (see ValidUTF8)
// and at most n bytes before the "…" Cut adds.
func Reason(err error, n int) string { return Cut(ValidUTF8(err.Error()), n) }

// Cut returns s, or when it is longer than n bytes its first n bytes at most, cut at a
// UTF-8 boundary, followed by "…".
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Truncate(s, n) + "…"
}

// Truncate returns s, or when it is longer than n bytes its first n bytes at most,
// cut at a UTF-8 boundary (so exactly n bytes when the cut falls between
// characters), with nothing added.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// cloudEventsAttributes are the names an extension must not take: the spec's context
// attributes, and data.
var cloudEventsAttributes = map[string]bool{"id": true, "source": true, "specversion": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true, "data": true, "data_base64": true,
	"correlationid": true, "traceparent": true, "tracestate": true, "partitionkey": true}

// CloudEventsExtensionName is the CloudEvents extension name that a topic publishing
// with WithCloudEvents gives a metadata key: the key in lowercase without the
// characters other than a-z and 0-9 ("Tenant-ID" becomes "tenantid"); "" when nothing
// is left, or the name is a CloudEvents attribute or an extension the library writes
// itself (correlationid, traceparent, tracestate, partitionkey).
func CloudEventsExtensionName(key string) string {
	b := make([]byte, 0, len(key))
	for _, c := range []byte(strings.ToLower(key)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	if name := string(b); !cloudEventsAttributes[name] {
		return name
	}
	return ""
}
