package pubsub

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/pubsubkit/pubsub/metadata"
)

// WithCloudEvents makes the topic publish its messages as CloudEvents in binary mode,
// as the CloudEvents Kafka protocol binding defines it (what a Knative Kafka broker
// stores): headers ce_specversion "1.0", ce_id (the message id), ce_type (the
// message's Go type, or WithCloudEventsType's), ce_source (source), ce_time (the
// publish time), and the standard content-type; the payload is the event's data.
//
// What else a message carries goes out as CloudEvents extensions as well as under its
// own header, so that CloudEvents consumers see it: the correlation id as
// ce_correlationid, the trace context as ce_traceparent and ce_tracestate (the
// distributed-tracing extension), and each WithMetadata entry as ce_<name>, where
// name is its key in lowercase with every character other than a-z and 0-9 left out
// ("Tenant-ID" becomes ce_tenantid). An entry whose name comes out empty, or as a
// CloudEvents attribute (id, source, type, time, subject, ...), or as the name of
// another extension written here, goes out under its own header only.
//
// Every topic reads CloudEvents in both modes, with or without this option.
func WithCloudEvents(source string) TopicOption {
	return func(o *topicOptions) { o.cloudEvents = &source }
}

// WithCloudEventsType sets the ce_type of the events a WithCloudEvents topic
// publishes, such as "com.example.order.created" (the CloudEvents spec asks for a
// reverse-DNS name); the default is the message's Go type. Without WithCloudEvents,
// or with an empty type, Publish and Subscribe on the topic return an error wrapping
// ErrInvalidOption.
func WithCloudEventsType(typ string) TopicOption {
	return func(o *topicOptions) { o.ceType = &typ }
}

func checkCloudEventsType(topic string, o topicOptions) error {
	switch {
	case o.cloudEvents == nil:
		return fmt.Errorf("pubsub: %w: topic %q: WithCloudEventsType(%q) needs WithCloudEvents", ErrInvalidOption, topic, *o.ceType)
	case *o.ceType == "":
		return fmt.Errorf("pubsub: %w: topic %q: WithCloudEventsType with an empty type", ErrInvalidOption, topic)
	}
	return nil
}

// setCloudEventsAttributes writes msg's CloudEvents attributes in binary mode, and
// its correlation id and user metadata as extensions. Two keys that map to one
// extension name give it the value of the one that sorts first.
func setCloudEventsAttributes(msg *message.Message, source, typ string, user map[string]string) {
	md := msg.Metadata
	metadata.SetCloudEvent(md, msg.UUID, source, cmp.Or(typ, md[metadata.MessageType]))
	md[metadata.CloudEventsTime] = md[metadata.PublishedAt] // both RFC 3339 in UTC (metadata.FormatTime)
	md[metadata.CloudEventsPrefix+"correlationid"] = md[metadata.CorrelationID]
	for _, k := range slices.Sorted(maps.Keys(user)) {
		if name := metadata.CloudEventsExtensionName(k); name != "" {
			if _, taken := md[metadata.CloudEventsPrefix+name]; !taken {
				md[metadata.CloudEventsPrefix+name] = user[k]
			}
		}
	}
}

// event is what Decode reads of a message: its payload and content type, and the
// CloudEvents attributes when the message is a CloudEvent.
type event struct {
	payload     []byte
	contentType string
	id          string            // the CloudEvents id; "" when not a CloudEvent
	attributes  map[string]string // ce_<name> → value, in binary mode's form
}

// readEvent reads msg as an event. A structured-mode CloudEvent (content type
// application/cloudevents+json) is unwrapped: its data is the payload, its
// datacontenttype the content type, its attributes and extensions ce_ keys, so that
// it is never decoded as the payload type itself. A binary-mode CloudEvent (a
// ce_specversion header) is read as it is.
func readEvent(msg *message.Message) (event, error) {
	ct := metadata.ContentTypeOf(msg.Metadata)
	if !metadata.IsMediaType(ct, metadata.StructuredCloudEvent) {
		e := event{payload: msg.Payload, contentType: ct}
		if msg.Metadata[metadata.CloudEventsSpec] != "" {
			e.id = msg.Metadata[metadata.CloudEventsID]
		}
		return e, nil
	}
	var ce cloudevents.Event
	if err := ce.UnmarshalJSON(msg.Payload); err != nil {
		return event{}, fmt.Errorf("a structured CloudEvent that does not parse: %w", err)
	}
	e := event{payload: ce.Data(), contentType: ce.DataContentType(), id: ce.ID(), attributes: map[string]string{
		metadata.CloudEventsSpec:   ce.SpecVersion(),
		metadata.CloudEventsID:     ce.ID(),
		metadata.CloudEventsSource: ce.Source(),
		metadata.CloudEventsType:   ce.Type(),
	}}
	if !ce.Time().IsZero() {
		// the time as the producer wrote it (an offset is kept); it parsed, so it is RFC 3339
		var raw struct{ Time string }
		_ = json.Unmarshal(msg.Payload, &raw)
		e.attributes[metadata.CloudEventsTime] = cmp.Or(raw.Time, metadata.FormatTime(ce.Time()))
	}
	if ct := ce.DataContentType(); ct != "" {
		e.attributes[metadata.CloudEventsPrefix+"datacontenttype"] = ct
	}
	if s := ce.Subject(); s != "" {
		e.attributes[metadata.CloudEventsPrefix+"subject"] = s
	}
	if s := ce.DataSchema(); s != "" {
		e.attributes[metadata.CloudEventsPrefix+"dataschema"] = s
	}
	for name, v := range ce.Extensions() {
		e.attributes[metadata.CloudEventsPrefix+strings.ToLower(name)] = fmt.Sprint(v)
	}
	return e, nil
}
