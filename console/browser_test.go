package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pubsubkit/pubsub"
	"github.com/pubsubkit/pubsub/console"
	"github.com/pubsubkit/pubsub/internal/kafkatest"
	"github.com/pubsubkit/pubsub/internal/testenv"
)

// browser starts headless Chromium for the test, or skips (fails with CI=true) when
// it is not installed.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "headless Chromium is needed (Debian package chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 860))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// TestBrowserClickThrough drives the console as an operator would: log in, open the
// subscription's dead letters, filter them, open one, fail an edit the codec refuses,
// replay it edited, tick two and discard them, replay a group of errors; each step is
// checked through the library.
func TestBrowserClickThrough(t *testing.T) {
	clickThrough(t, newFixture(t, console.WithToken("tok-3f9a")), true)
}

// TestBrowserClickThroughKafka is the same on an in-process Kafka cluster.
func TestBrowserClickThroughKafka(t *testing.T) {
	url := kafkatest.New(t).URL("")
	clickThrough(t, newFixtureOn(t, url, kafkatest.Topic("payments"), console.WithToken("tok-3f9a")), false)
}

func clickThrough(t *testing.T, f *fixture, screenshot bool) {
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+sel+"`"+`).length`))
		if err != nil {
			t.Fatalf("counting %s: %v", sel, err)
		}
		return n
	}

	do("log in", chromedp.Navigate(f.srv.URL+"/ops/"), chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "tok-3f9a"), chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("subscriptions")))
	if u := text("#url"); !strings.HasPrefix(u, strings.SplitN(f.c.URL(), ":", 2)[0]+"://") {
		t.Fatalf("transport URL shown: %q", u)
	}
	if role := text("#role"); role != "admin" {
		t.Fatalf("role %q after logging in with the token", role)
	}
	if got := text("#subscriptions tbody"); !strings.Contains(got, f.topic) || !strings.Contains(got, "ledger") {
		t.Fatalf("subscriptions table: %q", got)
	}

	do("open the dead letters", chromedp.Click(chromedp.CSS("a.letters")), chromedp.WaitVisible(chromedp.ID("letters")))
	if n := count("#letters tbody tr"); n != 6 {
		t.Fatalf("%d letters listed, want 6", n)
	}
	if n := count("#groups tbody tr"); n != 3 {
		t.Fatalf("%d groups of errors, want 3 (over the limit, negative, ledger closed)", n)
	}
	if got := text("#groups tbody tr:first-child"); !strings.Contains(got, "account <n> is over its limit") || !strings.HasPrefix(strings.TrimSpace(got), "3") {
		t.Fatalf("largest group: %q", got)
	}

	do("open a page of four", chromedp.Navigate(f.srv.URL+"/ops/subscription?topic="+f.topic+"&group=ledger&size=4"),
		chromedp.WaitVisible(chromedp.ID("older")))
	if n := count("#letters tbody tr"); n != 4 {
		t.Fatalf("%d letters on a page of 4", n)
	}
	if screenshot && os.Getenv("PUBSUB_UPDATE_SCREENSHOT") != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do("open the older page", chromedp.Click(chromedp.ID("older")), chromedp.WaitVisible(chromedp.ID("newest")))
	if n := count("#letters tbody tr"); n != 2 {
		t.Fatalf("%d letters on the older page, want 2", n)
	}
	do("back to all", chromedp.Navigate(f.srv.URL+"/ops/subscription?topic="+f.topic+"&group=ledger"), chromedp.WaitVisible(chromedp.ID("letters")))

	do("filter by reason", chromedp.SendKeys(chromedp.ID("f-reason"), "negative"), chromedp.Click(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.CSS(`#f-reason[value="negative"]`)))
	if n := count("#letters tbody tr"); n != 2 {
		t.Fatalf("%d letters with reason 'negative', want 2", n)
	}

	negative := f.letters(t, pubsub.ByReason("negative"))
	do("open a letter", chromedp.Click(chromedp.CSS(`a.letter[href*="`+negative[0].ID+`"]`)), chromedp.WaitVisible(chromedp.ID("payload")))
	if got := text("#payload"); !strings.Contains(got, "\"amount\": -") || !strings.Contains(got, "\n") {
		t.Fatalf("payload not shown as pretty JSON: %q", got)
	}
	if got := text("#facts"); !strings.Contains(got, "negative amount") || !strings.Contains(got, "Permanent\tyes") {
		t.Fatalf("facts of the letter: %q", got)
	}

	do("replay an edit the codec refuses", chromedp.SetValue(chromedp.ID("edit"), `{"id": "p-2", "amount": "lots"}`),
		chromedp.Click(chromedp.ID("replay-edited")), chromedp.WaitVisible(chromedp.ID("edit-error")))
	if got := text("#edit-error"); !strings.Contains(got, "amount") {
		t.Fatalf("edit error: %q", got)
	}
	if n := len(f.letters(t)); n != 6 {
		t.Fatalf("a refused edit changed the letters: %d pending", n)
	}
	do("replay an edited letter", chromedp.SetValue(chromedp.ID("edit"), `{"id": "`+negative[0].Key+`", "amount": 7}`),
		chromedp.Click(chromedp.ID("replay-edited")), chromedp.WaitVisible(chromedp.ID("flash")))
	f.waitPending(t, 5)
	if r := f.resolved(t); len(r) != 1 || !r[0].Replayed || r[0].ID != negative[0].ID || r[0].By != "token" {
		t.Fatalf("resolutions after the edited replay: %+v", r)
	}

	over := f.letters(t, pubsub.ByReason("over its limit"))
	do("tick two and discard", chromedp.Navigate(f.srv.URL+"/ops/subscription?topic="+f.topic+"&group=ledger"),
		chromedp.WaitVisible(chromedp.ID("letters")),
		chromedp.Click(chromedp.CSS(`input[value="`+over[0].ID+`"]`)), chromedp.Click(chromedp.CSS(`input[value="`+over[1].ID+`"]`)),
		chromedp.SendKeys(chromedp.ID("note"), "duplicates"), chromedp.Click(chromedp.ID("discard")), chromedp.WaitVisible(chromedp.ID("flash")))
	if got := text("#flash"); !strings.Contains(got, "Discarded 2 letter(s)") {
		t.Fatalf("flash after discarding: %q", got)
	}
	f.waitPending(t, 3)
	r := f.resolved(t)
	if len(r) != 3 || r[1].Replayed || r[2].Replayed || r[2].Note != "duplicates" || r[2].By != "token" {
		t.Fatalf("resolutions after the discard: %+v", r)
	}

	do("replay a group", chromedp.Navigate(f.srv.URL+"/ops/subscription?topic="+f.topic+"&group=ledger"), // no flash on it
		chromedp.WaitVisible(chromedp.ID("groups")), chromedp.Click(chromedp.CSS("button.replay-group")), chromedp.WaitVisible(chromedp.ID("flash")))
	if got := text("#flash"); !strings.Contains(got, "Replayed 1 of the 1 letter(s) shown") {
		t.Fatalf("flash after replaying a group: %q", got)
	}
	// The group replayed was the largest left: the one over-limit letter or the one
	// negative one, each of 1; the replayed letter fails again and comes back.
	if n := len(f.resolved(t)); n != 4 {
		t.Fatalf("%d resolutions after replaying a group, want 4", n)
	}
}
