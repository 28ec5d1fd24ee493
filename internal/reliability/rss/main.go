// Rss measures how much memory a consumer takes: it consumes -n messages of one
// topic through the full client (pubsub.Open, Subscribe, the default chain) and
// prints the process's peak resident set (VmHWM of /proc/self/status) once each of the
// n messages was handled, with how many were handled twice. With -produce it
// publishes the -n messages of -size bytes (random bytes, or with -compressible
// text that compresses) and exits, so that the consuming
// process holds nothing it did not consume.
//
//	go run ./internal/reliability/rss -url kafka://127.0.0.1:9092 -topic rss -produce -n 100000
//	go run ./internal/reliability/rss -url kafka://127.0.0.1:9092 -topic rss -n 100000
//
// The consumer's last line is "consumed=N duplicated=D seconds=S vmhwm_kib=K".
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/codec"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rss:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("PUBSUB_URL"), "transport URL (default $PUBSUB_URL)")
	topicName := fs.String("topic", "rss", "topic")
	group := fs.String("group", "rss", "consumer group")
	n := fs.Int("n", 100_000, "messages to publish or consume")
	size := fs.Int("size", 1024, "payload bytes of each published message (at least 8)")
	produce := fs.Bool("produce", false, "publish the messages instead of consuming them")
	compressible := fs.Bool("compressible", false, "publish payloads that compress about 19-fold instead of random bytes")
	concurrency := fs.Int("concurrency", 0, "Delivery.Concurrency of the subscription")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *n < 1 || *size < 8 {
		return errors.New("-url (or PUBSUB_URL) is required, -n at least 1 and -size at least 8")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := pubsub.Open(ctx, *url)
	if err != nil {
		return err
	}
	defer c.Close()
	topic := pubsub.NewTopic[[]byte](*topicName, pubsub.WithCodec(codec.Raw))
	if *produce {
		return publish(ctx, c, topic, *n, *size, *compressible)
	}
	return consume(ctx, c, topic, *group, *n, *concurrency)
}

// publish sends n payloads of size bytes, the first 8 holding the message's index and
// the rest random bytes (or, compressible, the alphabet over and over), in batches of
// 1,000.
func publish(ctx context.Context, c *pubsub.Client, topic pubsub.Topic[[]byte], n, size int, compressible bool) error {
	const batch = 1000
	rng := rand.NewChaCha8([32]byte{})
	for from := 0; from < n; from += batch {
		vs := make([][]byte, 0, batch)
		for i := from; i < min(from+batch, n); i++ {
			v := make([]byte, size)
			binary.BigEndian.PutUint64(v, uint64(i))
			if compressible {
				for j := 8; j < size; j++ {
					v[j] = byte('a' + j%26)
				}
			} else {
				rng.Read(v[8:])
			}
			vs = append(vs, v)
		}
		if err := pubsub.PublishBatch(ctx, c, topic, vs); err != nil {
			return fmt.Errorf("publishing messages %d..%d: %w", from, from+len(vs)-1, err)
		}
	}
	return c.Close()
}

// consume handles messages until each index below n was seen, then prints the peak
// resident set.
func consume(ctx context.Context, c *pubsub.Client, topic pubsub.Topic[[]byte], group string, n, concurrency int) error {
	var mu sync.Mutex
	seen := make([]bool, n)
	distinct, duplicated, foreign := 0, 0, 0
	all := make(chan struct{})
	err := pubsub.Subscribe(c, topic, group, func(_ context.Context, m *pubsub.Message[[]byte]) error {
		mu.Lock()
		defer mu.Unlock()
		if len(m.Payload) < 8 {
			foreign++
			return nil
		}
		i := binary.BigEndian.Uint64(m.Payload)
		switch {
		case i >= uint64(n):
			foreign++
		case seen[i]:
			duplicated++
		default:
			seen[i] = true
			distinct++
			if distinct == n {
				close(all)
			}
		}
		return nil
	}, pubsub.WithDelivery(pubsub.Delivery{Concurrency: concurrency}))
	if err != nil {
		return err
	}
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()
	select {
	case <-all:
	case err := <-ran:
		stop()
		return fmt.Errorf("the client stopped after %d of %d messages: %w", distinct, n, err)
	case <-ctx.Done():
		stop()
		return fmt.Errorf("%d of %d messages consumed before the timeout", distinct, n)
	}
	took := time.Since(start)
	hwm, err := peakRSS()
	if err != nil {
		stop()
		return err
	}
	stop()
	<-ran
	if err := c.Close(); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if foreign > 0 {
		return fmt.Errorf("%d messages not published by -produce with this -n", foreign)
	}
	fmt.Printf("consumed=%d duplicated=%d seconds=%.1f vmhwm_kib=%d\n", distinct, duplicated, took.Seconds(), hwm)
	return nil
}

// peakRSS reads VmHWM, the peak resident set of this process in KiB. It is this
// process's own, unlike getrusage's ru_maxrss, which a process started by exec
// inherits from the one it replaced.
func peakRSS() (int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("/proc/self/status has no VmHWM line")
}
