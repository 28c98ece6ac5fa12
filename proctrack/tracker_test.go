package proctrack

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

type fakeSource struct{ ch chan Event }

func (s *fakeSource) Events() <-chan Event { return s.ch }
func (s *fakeSource) Close() error         { return nil }

// reports collects a tracker's reports.
type reports chan string

func (r reports) fn(name string, up bool) { r <- fmt.Sprintf("%s:%v", name, up) }

func (r reports) want(t *testing.T, step string, want string) {
	t.Helper()
	select {
	case got := <-r:
		if got != want {
			t.Fatalf("%s: report %s, want %s", step, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no report (want %s)", step, want)
	}
}

func trackConf(process string) *conf.Config {
	return &conf.Config{
		TrackProcesses: []*conf.TrackProcess{{Name: "p", Process: process, Quorum: 1, QuorumMax: noMax}},
		Instances:      []*conf.VRRPInstance{{Name: "VI", TrackProcess: []conf.TrackProcessRef{{Name: "p"}}}},
	}
}

// TestTrackerEvents: New reports the initial status before it returns,
// Run applies the source's events, Apply recounts for a new
// configuration, and a configuration without tracked processes idles.
func TestTrackerEvents(t *testing.T) {
	tb := newTable()
	tb.set(5, "sleep")
	src := &fakeSource{ch: make(chan Event, 8)}
	opened := 0
	rep := make(reports, 16)
	tr := New(trackConf("sleep"), rep.fn, Options{Procs: tb, Open: func() (Source, error) { opened++; return src, nil }})
	rep.want(t, "New", "p:true")
	if mode, st := tr.Snapshot(); mode != "connector" || len(st) != 1 || st[0].Count != 1 {
		t.Fatalf("snapshot %s %+v", mode, st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.Run(ctx) }()
	src.ch <- Event{Kind: Exit, PID: 5}
	rep.want(t, "exit", "p:false")
	tb.set(6, "sleep")
	src.ch <- Event{Kind: Exec, PID: 6}
	rep.want(t, "exec", "p:true")
	tb.set(7, "nginx")
	tr.Apply(trackConf("nginx")) // p is now nginx: still up, by pid 7
	rep.want(t, "apply", "p:true")
	if _, st := tr.Snapshot(); st[0].Count != 1 || opened != 1 {
		t.Errorf("after apply: %+v, source opened %d times", st, opened)
	}
	tr.Apply(&conf.Config{})
	if mode, st := tr.Snapshot(); mode != "idle" || len(st) != 0 {
		t.Errorf("empty config: %s %+v", mode, st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTrackerPolls: without the connector the table is read every
// PollInterval.
func TestTrackerPolls(t *testing.T) {
	tb := newTable()
	rep := make(reports, 16)
	tr := New(trackConf("sleep"), rep.fn, Options{Procs: tb, PollInterval: 20 * time.Millisecond,
		Open: func() (Source, error) { return nil, fmt.Errorf("test: %w", ErrNoConnector) }})
	rep.want(t, "New", "p:false")
	if mode, _ := tr.Snapshot(); mode != "poll" {
		t.Fatalf("mode %s, want poll", mode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go tr.Run(ctx)
	tb.set(9, "sleep")
	rep.want(t, "poll sees it", "p:true")
	tb.del(9)
	rep.want(t, "poll sees it gone", "p:false")
}
