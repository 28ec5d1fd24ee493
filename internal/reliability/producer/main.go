// Producer publishes the reliability scenarios' load: -n keyed records through the
// SDK, from -callers goroutines: -n/-keys records for each of -keys keys, with Seq
// counting up. Each key is published by one goroutine, one record at a time, so the
// topic holds every key's records in Seq order. A Publish that fails is tried again
// with the same record until it succeeds (or the producer is signalled); -ledger
// writes a line for every Publish that returned nil:
//
//	published <key> <seq> <unix nanos>
//
//	go run ./internal/reliability/producer -url kafka://127.0.0.1:9092 -topic load -n 50000
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/reliability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("PUBSUB_URL"), "transport URL (default $PUBSUB_URL)")
	topicName := fs.String("topic", "reliability.load", "topic")
	n := fs.Int("n", 50_000, "records to publish")
	keys := fs.Int("keys", 100, "distinct keys")
	callers := fs.Int("callers", 16, "concurrent publishing goroutines")
	size := fs.Int("size", 100, "approximate payload size in bytes")
	pace := fs.Duration("pace", 0, "pause after each Publish of a goroutine")
	path := fs.String("ledger", "", "file to append a line to for every Publish that returned nil")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *url == "":
		return fmt.Errorf("-url or PUBSUB_URL is required")
	case *n < 1 || *keys < 1 || *callers < 1 || *size < 0:
		return fmt.Errorf("-n, -keys and -callers must be positive, -size not negative")
	case *n%*keys != 0:
		return fmt.Errorf("-n %d is not a multiple of -keys %d", *n, *keys)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := pubsub.Open(ctx, *url, pubsub.WithLogger(logger))
	if err != nil {
		return err
	}
	defer c.Close()
	topic := reliability.Topic(*topicName)
	pad := strings.Repeat("x", max(0, *size-30))
	var ledger *reliability.Ledger
	if *path != "" {
		if ledger, err = reliability.OpenLedger(*path); err != nil {
			return err
		}
		defer ledger.Close()
	}
	publish := func(r reliability.Record) error {
		for {
			err := pubsub.Publish(ctx, c, topic, r)
			if err == nil {
				if ledger != nil {
					return ledger.Published(r)
				}
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			logger.Warn("publish failed; trying again", "key", r.Key, "seq", r.Seq, "error", err)
			time.Sleep(100 * time.Millisecond)
		}
	}

	start := time.Now()
	errs := make(chan error, *callers)
	var wg sync.WaitGroup
	perKey := *n / *keys
	for w := range min(*callers, *keys) {
		wg.Go(func() {
			// This goroutine owns keys w, w+callers, ... and publishes each key's
			// records in Seq order, one at a time.
			for seq := range perKey {
				for k := w; k < *keys; k += *callers {
					r := reliability.Record{Key: reliability.KeyOf(k), Seq: seq, Pad: pad}
					if err := publish(r); err != nil {
						errs <- fmt.Errorf("publishing %s/%d: %w", r.Key, r.Seq, err)
						return
					}
					if *pace > 0 {
						time.Sleep(*pace)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Printf("published %d records (%d keys) in %s: %.0f msgs/s\n", *n, *keys, took.Round(time.Millisecond), float64(*n)/took.Seconds())
	return c.Close()
}
