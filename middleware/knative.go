package middleware

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"

	"github.com/pubsubkit/pubsub/metadata"
)

// knativeErrorDataLimit is how much of the reason a Knative error extension carries
// before base64, as Knative's brokers cut the response body they record.
const knativeErrorDataLimit = 1024

// KnativeDestination names a subscription in a dead letter's knativeerrordest
// extension: "pubsub:<topic>/<group>". Knative writes the URL of the subscriber it
// failed to deliver to; a pubsubkit subscription has no URL, so it is named by its
// topic and group instead.
func KnativeDestination(topic, group string) string { return "pubsub:" + topic + "/" + group }

// knativeCode is the HTTP status code Knative would have seen for cause: 504 for an
// attempt that timed out, 422 for a permanent failure (the event cannot be handled),
// 500 otherwise.
func knativeCode(cause error) int {
	switch {
	case errors.Is(cause, ErrAttemptTimeout):
		return 504
	case IsPermanent(cause):
		return 422
	default:
		return 500
	}
}

// asKnativeDeadLetter makes dead a CloudEvent with Knative's error extensions, as a
// Knative broker writes to its dead-letter sink: knativeerrordest (the subscription,
// see KnativeDestination), knativeerrorcode (see knativeCode) and knativeerrordata
// (the reason, cut to at most 1,024 bytes at a UTF-8 boundary, as Knative cuts the
// body it records, then base64). A structured-mode event gets them in its JSON
// envelope, and a time if it had none; any other message becomes (or stays) a
// binary-mode event, keeping its ce_ attributes when it has them and otherwise taking
// the message id as ce_id, its message type as ce_type and dest as ce_source. Every
// binary-mode dead letter has a ce_time (the event's own; else the message's publish
// time; else now) and a content-type (the message's; else
// application/octet-stream, the spec's meaning of data of no stated type).
func asKnativeDeadLetter(dead *message.Message, dest, reason string, code int) error {
	data := base64.StdEncoding.EncodeToString([]byte(metadata.Truncate(reason, knativeErrorDataLimit)))
	md := dead.Metadata
	if metadata.MediaType(metadata.ContentTypeOf(md)) == metadata.StructuredCloudEvent {
		var ev cloudevents.Event
		if err := ev.UnmarshalJSON(dead.Payload); err != nil {
			return fmt.Errorf("a structured CloudEvent that does not parse: %w", err)
		}
		ev.SetExtension("knativeerrordest", dest)
		ev.SetExtension("knativeerrorcode", strconv.Itoa(code))
		ev.SetExtension("knativeerrordata", data)
		if ev.Time().IsZero() {
			ev.SetTime(knativeTime(md))
		}
		b, err := ev.MarshalJSON()
		if err != nil {
			return err
		}
		dead.Payload = b
		return nil
	}
	if md[metadata.CloudEventsSpec] == "" {
		metadata.SetCloudEvent(md, dead.UUID, dest, cmp.Or(md[metadata.MessageType], "dev.pubsubkit.deadletter"))
	}
	if md[metadata.CloudEventsTime] == "" {
		md[metadata.CloudEventsTime] = metadata.FormatTime(knativeTime(md))
	}
	md[metadata.ContentType] = cmp.Or(metadata.ContentTypeOf(md), "application/octet-stream")
	md[metadata.KnativeErrorDest] = dest
	md[metadata.KnativeErrorCode] = strconv.Itoa(code)
	md[metadata.KnativeErrorData] = data
	return nil
}

// knativeTime is the time of a dead letter's event that has none of its own: the
// message's publish time, or else now.
func knativeTime(md message.Metadata) time.Time {
	if t, ok := metadata.ParseTime(md[metadata.PublishedAt]); ok {
		return t
	}
	return time.Now()
}
