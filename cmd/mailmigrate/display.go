package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"mailmigrate/internal/engine"
)

// display shows live progress on a terminal (one redrawn line) and plain
// timestamped log lines elsewhere.
type display struct {
	w        io.Writer
	progress *engine.Progress
	tty      bool
	quiet    bool
	started  time.Time

	mu   sync.Mutex
	done chan struct{}
	wg   sync.WaitGroup
}

func newDisplay(w io.Writer, p *engine.Progress, quiet bool) *display {
	d := &display{w: w, progress: p, quiet: quiet, started: time.Now(), done: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			d.tty = true
		}
	}
	return d
}

func (d *display) start() {
	if !d.tty || d.quiet {
		return
	}
	d.wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-d.done:
				d.mu.Lock()
				fmt.Fprint(d.w, "\r\033[K")
				d.mu.Unlock()
				return
			case <-t.C:
				d.mu.Lock()
				fmt.Fprint(d.w, "\r\033[K"+d.line())
				d.mu.Unlock()
			}
		}
	})
}

func (d *display) stop() {
	close(d.done)
	d.wg.Wait()
}

func (d *display) logf(format string, args ...any) {
	if d.quiet {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tty {
		fmt.Fprintf(d.w, "\r\033[K"+format+"\n", args...)
		return
	}
	fmt.Fprintf(d.w, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// line is the progress line: accounts, folders, messages and bytes
// done/total, rate and ETA.
func (d *display) line() string {
	s := d.progress.Snapshot()
	el := time.Since(d.started).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(s.BytesDone) / el
	}
	eta := "--"
	switch {
	case s.BytesTotal > 0 && rate > 0 && s.BytesDone < s.BytesTotal:
		eta = (time.Duration(float64(s.BytesTotal-s.BytesDone)/rate) * time.Second).Round(time.Second).String()
	case s.MessagesTotal > 0 && s.MessagesDone > 0 && s.MessagesDone < s.MessagesTotal:
		eta = (time.Duration(el*float64(s.MessagesTotal-s.MessagesDone)/float64(s.MessagesDone)) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("accounts %d/%d  folders %d/%d  messages %d/%d  %s/%s  %s/s  ETA %s",
		s.AccountsDone, s.AccountsTotal, s.FoldersDone, s.FoldersTotal, s.MessagesDone, s.MessagesTotal,
		engine.HumanBytes(s.BytesDone), engine.HumanBytes(s.BytesTotal), engine.HumanBytes(int64(rate)), eta)
}
