package memory_test

import (
	"testing"

	"github.com/pubsubkit/pubsub/internal/testsuite"
	"github.com/pubsubkit/pubsub/transport"
	"github.com/pubsubkit/pubsub/transport/memory"
)

func TestConformance(t *testing.T) {
	testsuite.Run(t, testsuite.Harness{New: func(t *testing.T) transport.Transport {
		tr, err := memory.New(memory.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}})
}
