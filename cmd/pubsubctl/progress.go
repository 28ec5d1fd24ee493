package main

import (
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// bar is the progress bar of a replay or discard, drawn on stderr only when stderr is
// a terminal and the output is not JSON; otherwise its methods do nothing.
type bar struct {
	name string
	pb   *progressbar.ProgressBar
	on   bool
}

func newBar(c *cli, name string) *bar {
	f, ok := c.err.(*os.File)
	return &bar{name: name, on: ok && !c.json && term.IsTerminal(int(f.Fd()))}
}

// update is ReplaySelector.OnProgress's callback.
func (b *bar) update(done, total int) {
	if !b.on || total < 2 {
		return
	}
	if b.pb == nil {
		b.pb = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(b.name),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(0))
	}
	_ = b.pb.Set(done)
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}
