package healthcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

func TestStrtol(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "abc": 0, "5": 5, "5\n": 5, "  -3": -3, "+7x": 7, "12abc": 12,
		"0x10": 16, "0X1f": 31, "010": 8, "09": 0, "0x": 0, "-0x10": -16,
		"99999999999999999999999": 1 << 62,
	} {
		if got := strtol(in); got != want {
			t.Errorf("strtol(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestFileCheck: FILE_CHECK resolved from its track_file (path, weight and
// reverse, its own weight first), its timers fixed; the probe's verdicts;
// and, on the real scheduler, a real server whose file says "drain" at
// start is drained from its first event, and follows the file's changes
// within a second, without a reload.
func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	drain, down := filepath.Join(dir, "drain"), filepath.Join(dir, "down")
	if err := os.WriteFile(drain, []byte("-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, `
track_file drain {
  file `+drain+`
  weight 1
}
track_file down {
  file `+down+`
  weight 0
}
virtual_server 192.0.2.1 80 {
  protocol TCP
  delay_loop 30
  real_server 10.0.0.1 80 {
    weight 5
    FILE_CHECK {
      track_file drain
      weight 5
    }
  }
  real_server 10.0.0.2 80 {
    FILE_CHECK {
      track_file down
    }
  }
  real_server 10.0.0.3 80 {
    FILE_CHECK {
      track_file drain
      weight 2 reverse
    }
  }
}`)
	rs := cfg.VirtualServers[0].RealServers
	c1, c2, c3 := rs[0].Checkers[0], rs[1].Checkers[0], rs[2].Checkers[0]
	if c1.FilePath != drain || c1.FileWeight != 5 || c1.FileReverse || c2.FilePath != down || c2.FileWeight != 0 || c3.FileWeight != 2 || !c3.FileReverse {
		t.Fatalf("resolved: %+v / %+v / %+v", c1, c2, c3)
	}
	if c1.Timers.DelayLoop != 500*time.Millisecond || c1.Timers.Retry != 0 || c1.Timers.Warmup != 0 {
		t.Errorf("timers %+v, want FILE_CHECK's own (500ms, no retry, no warmup)", c1.Timers)
	}
	p1, p2, p3 := newFileProbe(c1, rs[0]), newFileProbe(c2, rs[1]), newFileProbe(c3, rs[2])
	for _, x := range []struct {
		p      *fileProbe
		file   string // "" removes it
		ok     bool
		weight int
	}{
		{p1, "-1", true, 0}, {p1, "0", true, 5}, {p1, "3", true, 20}, {p1, "-100", true, 0},
		{p2, "", true, -1}, {p2, "0", true, -1}, {p2, "1", false, -1}, {p2, "-2", false, -1},
		{p3, "-1", true, 3}, {p3, "2", true, 0},
	} {
		if x.file == "" {
			os.Remove(x.p.path)
		} else if err := os.WriteFile(x.p.path, []byte(x.file+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := x.p.probe(context.Background())
		if r.ok != x.ok || r.weight != x.weight {
			t.Errorf("%s holding %q: ok %v weight %d, want %v %d (%s)", x.p.path, x.file, r.ok, r.weight, x.ok, x.weight, r.reason)
		}
	}

	// The real scheduler.
	os.WriteFile(drain, []byte("-1\n"), 0o644)
	os.WriteFile(down, []byte("1\n"), 0o644)
	s := New(cfg, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	got := map[string]Event{}
	next := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for !ok() {
			select {
			case ev := <-s.Events():
				got[ev.RS.String()] = ev
			case <-deadline:
				t.Fatalf("waiting for %s: %v", what, got)
			}
		}
	}
	next("the initial events", func() bool { return len(got) == 3 })
	if e := got["10.0.0.1:80"]; !e.Up || e.Weight != 0 {
		t.Errorf("drained at start: %+v, want up with weight 0", e)
	}
	if e := got["10.0.0.2:80"]; e.Up {
		t.Errorf("file says down at start: %+v, want down", e)
	}
	start := time.Now()
	os.WriteFile(drain, []byte("0\n"), 0o644)
	os.WriteFile(down, []byte("0\n"), 0o644)
	next("the file's changes", func() bool {
		return got["10.0.0.1:80"].Weight == 5 && got["10.0.0.2:80"].Up && got["10.0.0.3:80"].Weight == 1
	})
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("followed the files after %v, want within half a second (and a margin)", d)
	}
}

// TestRSInitNotifies: with rs_init_notifies a real server up at start-up
// has its notify_up run and is reported (the FIFO's RS line); one in alpha
// (down until checked) is not; without the keyword neither is.
func TestRSInitNotifies(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "up")
	script := filepath.Join(dir, "up.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := `
virtual_server 192.0.2.1 80 {
  protocol TCP
  real_server 10.0.0.1 80 {
    notify_up "` + script + ` rs1"
  }
  real_server 10.0.0.2 80 {
    notify_up "` + script + ` rs2"
    MISC_CHECK {
      misc_path /bin/false
      alpha
      warmup 60
      delay_loop 60
    }
  }
}`
	for _, on := range []bool{true, false} {
		os.Remove(out)
		g := ""
		if on {
			g = "global_defs {\n  rs_init_notifies\n}\n"
		}
		var got []string
		var mu sync.Mutex
		s := New(mustParse(t, g+text), Options{RealServer: func(vs *conf.VirtualServer, rs *conf.RealServer, up bool) {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s %v", rs.AddrPort(), up))
			mu.Unlock()
		}, Started: func() {
			mu.Lock()
			got = append(got, "started")
			mu.Unlock()
		}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		time.Sleep(700 * time.Millisecond)
		cancel()
		<-done
		mu.Lock()
		want := "started" // Options.Started: after the initial states
		if on {
			want = "10.0.0.1:80 true,started"
		}
		if strings.Join(got, ",") != want {
			t.Errorf("rs_init_notifies %v: reported %v, want %q", on, got, want)
		}
		mu.Unlock()
		b, _ := os.ReadFile(out)
		if wantOut := map[bool]string{true: "rs1\n", false: ""}[on]; string(b) != wantOut {
			t.Errorf("rs_init_notifies %v: notify_up ran %q, want %q", on, b, wantOut)
		}
	}
}
