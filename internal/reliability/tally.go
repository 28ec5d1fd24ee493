package reliability

import (
	"fmt"
	"time"
)

// Tally is what a ledger says about a run that published Keys×PerKey records.
type Tally struct {
	Expected int // records published
	Handled  int // distinct records whose handler finished with its context alive
	Lost     int // published records never handled
	// Duplicates counts extra finished handlings of records already handled.
	Duplicates int
	// OutOfOrder counts first handlings of a key's record that came after a later
	// record of the same key.
	OutOfOrder int
	// Cancelled counts handlings that finished with their context cancelled.
	Cancelled int
	// Processes is how many consumer processes wrote to the ledger; Exited how many of
	// them closed cleanly.
	Processes, Exited int
	// StartedAfterTerm counts handlers a process started after its drain began
	// (beyond the grace given to Count).
	StartedAfterTerm int
	// RepeatedAfterDrain counts records finished by a process that drained cleanly
	// and then handled again by a later process: the offsets of finished handlers
	// were not committed by the drain.
	RepeatedAfterDrain int
	// Unfinished counts handlers a cleanly drained process started and never finished.
	Unfinished int
	// InFlightAtTerm counts handlers that started before their process's drain began
	// and finished after: the ones a drain has to wait for.
	InFlightAtTerm int
}

func (t Tally) String() string {
	return fmt.Sprintf("expected %d, handled %d, lost %d, duplicates %d, out of order %d, cancelled %d, "+
		"processes %d (%d exited cleanly), in flight at term %d, started after term %d, repeated after drain %d, unfinished %d",
		t.Expected, t.Handled, t.Lost, t.Duplicates, t.OutOfOrder, t.Cancelled,
		t.Processes, t.Exited, t.InFlightAtTerm, t.StartedAfterTerm, t.RepeatedAfterDrain, t.Unfinished)
}

type rec struct {
	key string
	seq int
}

// Count tallies entries for records KeyOf(0..keys-1) × seq 0..perKey-1. A handler
// that started within grace after its process's term line was already handed over
// when the drain began and is not counted as started after it.
func Count(entries []Entry, keys, perKey int, grace time.Duration) Tally {
	t := Tally{Expected: keys * perKey}
	handled := map[rec]int{}
	lastFirst := map[string]int{} // per key: highest seq first handled so far
	term := map[int]time.Time{}
	exited := map[int]bool{}
	pids := map[int]bool{}
	open := map[int]map[rec]int{} // per pid: started and not yet finished
	finishedBy := map[rec]int{}   // the pid that first finished a record
	for _, e := range entries {
		pids[e.PID] = true
		r := rec{e.Key, e.Seq}
		switch e.Kind {
		case "term":
			term[e.PID] = e.At
		case "exit":
			exited[e.PID] = true
		case "start":
			if at, ok := term[e.PID]; ok && e.At.Sub(at) > grace {
				t.StartedAfterTerm++
			}
			if open[e.PID] == nil {
				open[e.PID] = map[rec]int{}
			}
			open[e.PID][r]++
		case "done":
			if open[e.PID][r] > 0 {
				open[e.PID][r]--
				if _, ok := term[e.PID]; ok {
					t.InFlightAtTerm++
				}
			}
			if e.Cancelled {
				t.Cancelled++
				continue
			}
			if by, ok := finishedBy[r]; ok && by != e.PID && exited[by] {
				t.RepeatedAfterDrain++
			}
			handled[r]++
			if handled[r] > 1 {
				t.Duplicates++
				continue
			}
			finishedBy[r] = e.PID
			if last, ok := lastFirst[e.Key]; ok && e.Seq < last {
				t.OutOfOrder++
			} else {
				lastFirst[e.Key] = e.Seq
			}
		}
	}
	for k := range keys {
		for s := range perKey {
			if handled[rec{KeyOf(k), s}] == 0 {
				t.Lost++
			}
		}
	}
	t.Handled = len(handled)
	t.Processes, t.Exited = len(pids), len(exited)
	for pid, recs := range open {
		if !exited[pid] {
			continue
		}
		for _, n := range recs {
			t.Unfinished += n
		}
	}
	return t
}
