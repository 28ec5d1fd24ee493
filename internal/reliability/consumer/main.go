// Consumer handles the reliability scenarios' load through the SDK and writes what it
// did to a ledger (see reliability.Ledger): a line when each handler starts and one
// when it finishes, a line when SIGTERM or SIGINT begins the drain, and one when the
// client has closed cleanly. It consumes until signalled. PUBSUB_DEBUG=1 logs at
// debug level to standard error, the Kafka client's own records (group joins,
// rebalances, fetches) included.
//
//	go run ./internal/reliability/consumer -url kafka://127.0.0.1:9092 -topic load -group g -ledger out.txt
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/internal/reliability"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	url := fs.String("url", os.Getenv("PUBSUB_URL"), "transport URL (default $PUBSUB_URL)")
	topicName := fs.String("topic", "reliability.load", "topic")
	group := fs.String("group", "reliability", "consumer group")
	path := fs.String("ledger", "", "ledger file to append to (required)")
	work := fs.Duration("work", 0, "time each handler takes, ending early if its context ends")
	drain := fs.Duration("drain-timeout", pubsub.DefaultDrainTimeout, "drain timeout")
	unordered := fs.Bool("unordered", false, "subscribe with Unordered delivery")
	concurrency := fs.Int("concurrency", 0, "Delivery.Concurrency: messages of one partition handled at once")
	instance := fs.String("instance", "", "static group membership: kafka instance_id (a restart takes its partitions back at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *path == "" {
		return fmt.Errorf("-url (or PUBSUB_URL) and -ledger are required")
	}
	ledger, err := reliability.OpenLedger(*path)
	if err != nil {
		return err
	}
	defer ledger.Close()

	level := slog.LevelWarn
	if os.Getenv("PUBSUB_DEBUG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if *instance != "" {
		u, err := neturl.Parse(*url)
		if err != nil {
			return fmt.Errorf("-url: %w", err)
		}
		q := u.Query()
		q.Set("instance_id", *instance)
		u.RawQuery = q.Encode()
		*url = u.String()
	}
	c, err := pubsub.Open(openCtx, *url, pubsub.WithLogger(logger), pubsub.WithDrainTimeout(*drain))
	if err != nil {
		return err
	}
	defer c.Close()
	d := pubsub.Delivery{Concurrency: *concurrency}
	if *unordered {
		d.Ordering = pubsub.Unordered
	}
	opts := []pubsub.SubscribeOption{pubsub.WithDelivery(d)}
	err = pubsub.Subscribe(c, reliability.Topic(*topicName), *group, func(ctx context.Context, m *pubsub.Message[reliability.Record]) error {
		if err := ledger.Start(m.Payload, m.Attempt); err != nil {
			return err
		}
		if *work > 0 {
			select {
			case <-time.After(*work):
			case <-ctx.Done():
			}
		}
		cancelled := ctx.Err() != nil
		if err := ledger.Done(m.Payload, m.Attempt, cancelled); err != nil {
			return err
		}
		if cancelled {
			return ctx.Err() // not handled: redelivered
		}
		return nil
	}, opts...)
	if err != nil {
		return err
	}
	stopped := context.AfterFunc(ctx, func() { ledger.Term() })
	defer stopped()
	runErr := c.Run(ctx)
	if err := c.Close(); err != nil || runErr != nil {
		return errors.Join(runErr, err)
	}
	return ledger.Exit()
}
