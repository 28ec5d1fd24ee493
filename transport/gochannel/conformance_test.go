package gochannel_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/gochannel"
)

// TestConformance runs the transport conformance suite on Watermill's gochannel,
// plugged in through watermilladapter.New: the rules its capabilities allow run,
// and the others are skipped by name with the capability they need.
func TestConformance(t *testing.T) {
	testsuite.Run(t, testsuite.Harness{New: func(t *testing.T) transport.Transport {
		u, _ := url.Parse("gochannel://")
		tr, err := gochannel.Open(context.Background(), u, transport.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}})
}
