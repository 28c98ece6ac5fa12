package healthcheck

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

const oneTCP = `
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 5
  real_server 10.0.0.1 80 {
    TCP_CHECK {
      retry 2
      delay_before_retry 1
      warmup 0
    }
  }
}`

// An up checker that fails is retried retry times, delay_before_retry apart,
// before it goes down; then it is not retried, and it comes back up at the
// first success.
func TestLogicRetryThenDownThenUp(t *testing.T) {
	p := &fakeProbe{outcome: upFrom(at(21 * time.Second)), dur: 0}
	h := newHarness(t, mustParse(t, oneTCP), map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	h.runUntil(at(30 * time.Second))
	want := []time.Duration{0, 1 * time.Second, 2 * time.Second, 7 * time.Second, 12 * time.Second, 17 * time.Second, 22 * time.Second, 27 * time.Second}
	if got := durs(p.starts); !sameDurs(got, want) {
		t.Fatalf("attempts at %v, want %v", got, want)
	}
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; 2s 10.0.0.1:80 down; 22s 10.0.0.1:80 up; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if !strings.Contains(h.events[1].Reason, "after 2 retries") || !strings.Contains(h.events[1].Reason, "refused") {
		t.Errorf("down reason %q", h.events[1].Reason)
	}
	st := h.s.Snapshot()[0]
	if !st.Up || st.Transitions != 2 || st.Checkers[0].Failures != 0 || st.Checkers[0].Checks != 8 {
		t.Errorf("snapshot %+v", st)
	}
}

// A success between failures resets the retry count.
func TestLogicSuccessResetsRetries(t *testing.T) {
	// fail, retry ok, fail, retry fail, retry fail → down only at the second run.
	seq := []bool{false, true, false, false, false}
	p := &fakeProbe{outcome: func(n int, _ time.Time) result {
		if n < len(seq) && seq[n] {
			return pass("ok")
		}
		if n < len(seq) {
			return fail("refused")
		}
		return fail("refused")
	}}
	h := newHarness(t, mustParse(t, oneTCP), map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	h.runUntil(at(9 * time.Second))
	// 0 fail, 1 retry ok → a new period from the end of the retry, 1+5=6;
	// 6 fail, 7 fail, 8 fail → down at 8.
	want := []time.Duration{0, time.Second, 6 * time.Second, 7 * time.Second, 8 * time.Second}
	if got := durs(p.starts); !sameDurs(got, want) {
		t.Fatalf("attempts at %v, want %v", got, want)
	}
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; 8s 10.0.0.1:80 down; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// retry 0: the first failure takes it down.
func TestLogicNoRetry(t *testing.T) {
	cfg := mustParse(t, strings.Replace(oneTCP, "retry 2", "retry 0", 1))
	p := &fakeProbe{outcome: downFrom(at(10 * time.Second)), dur: 300 * time.Millisecond}
	h := newHarness(t, cfg, map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	h.runUntil(at(12 * time.Second))
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; 10.3s 10.0.0.1:80 down; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// alpha: starts down, a failure is not retried, the first success brings it up.
func TestLogicAlpha(t *testing.T) {
	cfg := mustParse(t, strings.Replace(oneTCP, "delay_loop 5", "delay_loop 5\n  alpha", 1))
	p := &fakeProbe{outcome: upFrom(at(9 * time.Second))}
	h := newHarness(t, cfg, map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	h.runUntil(at(16 * time.Second))
	want := []time.Duration{0, 5 * time.Second, 10 * time.Second, 15 * time.Second}
	if got := durs(p.starts); !sameDurs(got, want) {
		t.Fatalf("attempts at %v, want %v", got, want)
	}
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 down; 10s 10.0.0.1:80 up; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if !strings.Contains(h.events[0].Reason, "alpha") {
		t.Errorf("initial reason %q", h.events[0].Reason)
	}
}

// A checker's own alpha overrides the real server's.
func TestLogicCheckerAlphaOverrides(t *testing.T) {
	cfg := mustParse(t, `
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 5
  alpha
  real_server 10.0.0.1 80 {
    TCP_CHECK {
      alpha no
      warmup 0
    }
  }
}`)
	p := &fakeProbe{outcome: always(true)}
	h := newHarness(t, cfg, map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// A check longer than its period is not started twice: the missed periods
// are skipped, the phase kept.
func TestLogicOverrunSkipsPeriods(t *testing.T) {
	cfg := mustParse(t, strings.Replace(oneTCP, "delay_loop 5", "delay_loop 1", 1))
	p := &fakeProbe{outcome: always(true), dur: 2500 * time.Millisecond}
	h := newHarness(t, cfg, map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	h.runUntil(at(10 * time.Second))
	want := []time.Duration{0, 3 * time.Second, 6 * time.Second, 9 * time.Second}
	if got := durs(p.starts); !sameDurs(got, want) {
		t.Fatalf("attempts at %v, want %v", got, want)
	}
}

// The first check waits a random delay in [0, warmup].
func TestLogicWarmup(t *testing.T) {
	cfg := mustParse(t, strings.Replace(oneTCP, "warmup 0", "warmup 3", 1))
	p := &fakeProbe{outcome: always(true)}
	h := newHarness(t, cfg, map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	var asked int64
	h.s.randN = func(n int64) int64 { asked = n; return n - 1 }
	h.start()
	h.runUntil(at(9 * time.Second))
	if asked != int64(3*time.Second)+1 {
		t.Fatalf("random delay drawn in [0, %v), want [0, 3s]", time.Duration(asked))
	}
	first := 3 * time.Second
	want := []time.Duration{first, first + 5*time.Second}
	if got := durs(p.starts); !sameDurs(got, want) {
		t.Fatalf("attempts at %v, want %v", got, want)
	}
}

const twoCheckers = `
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 5
  real_server 10.0.0.1 80 {
    notify_up /bin/true
    TCP_CHECK {
      retry 0
      warmup 0
    }
    HTTP_GET {
      url {
        path /health
      }
      retry 0
      warmup 0
    }
  }
}`

// A real server is up only when all its checkers are.
func TestLogicAllCheckersMustBeUp(t *testing.T) {
	tcp := &fakeProbe{outcome: downFrom(at(10 * time.Second))}
	http := &fakeProbe{outcome: func(_ int, now time.Time) result {
		if now.Before(at(4*time.Second)) || now.After(at(25*time.Second)) {
			return pass("ok")
		}
		return fail("HTTP status 500")
	}}
	h := newHarness(t, mustParse(t, twoCheckers), map[string]*fakeProbe{
		"TCP_CHECK 10.0.0.1:80": tcp, "HTTP_GET 10.0.0.1:80": http})
	h.start()
	h.runUntil(at(31 * time.Second))
	// http down at 5; tcp down at 10 (rs already down); http up at 30 (tcp still down).
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; 5s 10.0.0.1:80 down; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	st := h.s.Snapshot()[0]
	if st.Up || st.Checkers[0].Up || !st.Checkers[1].Up || st.Checkers[1].Transitions != 2 {
		t.Fatalf("snapshot %+v", st)
	}
	// Every checker transition is an alert (smtp_alert), with the real
	// server's state after it and whether it changed with it.
	var got []string
	for _, a := range h.alerts {
		got = append(got, fmt.Sprintf("%s %s up=%v rs=%v changed=%v (%s)", a.RS.AddrPort(), a.Checker, a.CheckerUp, a.Up, a.RSChanged, a.Reason))
	}
	want := []string{
		"10.0.0.1:80 HTTP_GET up=false rs=false changed=true (HTTP status 500)",
		"10.0.0.1:80 TCP_CHECK up=false rs=false changed=false (refused)",
		"10.0.0.1:80 HTTP_GET up=true rs=false changed=false (ok)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("alerts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if h.alerts[0].VS == nil || h.alerts[0].VS.Port != 80 {
		t.Fatalf("alert without its virtual server: %+v", h.alerts[0])
	}
}

// MISC_CHECK misc_dynamic: the weight follows the exit status; 0 keeps it.
func TestLogicDynamicWeight(t *testing.T) {
	cfg := mustParse(t, `
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 1
  real_server 10.0.0.1 80 {
    weight 3
    MISC_CHECK {
      misc_path "/usr/local/bin/check 10.0.0.1"
      misc_dynamic
      warmup 0
    }
  }
}`)
	codes := []int{0, 7, 7, 0, 12, 1, 0}
	p := &fakeProbe{outcome: func(n int, _ time.Time) result {
		code := codes[min(n, len(codes)-1)]
		switch {
		case code == 0:
			return pass("exit 0")
		case code == 1:
			return fail("exit 1")
		}
		r := pass("exit")
		r.weight = code - 2
		return r
	}}
	h := newHarness(t, cfg, map[string]*fakeProbe{"MISC_CHECK /usr/local/bin/check": p})
	h.start()
	h.runUntil(at(6500 * time.Millisecond))
	want := "0s 10.0.0.1:80 up; 1s 10.0.0.1:80 up w=5; 4s 10.0.0.1:80 up w=10; 5s 10.0.0.1:80 down w=10; 6s 10.0.0.1:80 up w=10; "
	if got := eventsString(h.events); got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if h.events[0].Weight != -1 {
		t.Fatalf("initial weight %d, want -1", h.events[0].Weight)
	}
}

// Real servers whose checkers lvsd does not run yet are always up.
func TestLogicUnsupportedAlwaysUp(t *testing.T) {
	cfg := mustParse(t, `
virtual_server 192.0.2.1 53 {
    protocol TCP
  protocol UDP
  delay_loop 5
  alpha
  real_server 10.0.0.1 53 {
    DNS_CHECK {
      name example.org
    }
  }
  real_server 10.0.0.2 53 {
  }
}`)
	// lvsd runs every checker type conf hands it; pretend one it does not.
	cfg.VirtualServers[0].RealServers[0].Checkers[0].Type = conf.CheckBFD
	h := newHarness(t, cfg, nil)
	h.start()
	h.runUntil(at(20 * time.Second))
	if got, want := eventsString(h.events), "0s 10.0.0.1:53 up; 0s 10.0.0.2:53 up; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	if !strings.Contains(h.events[0].Reason, "BFD_CHECK") {
		t.Errorf("reason %q", h.events[0].Reason)
	}
	if len(h.s.heap) != 0 {
		t.Errorf("%d checkers scheduled, want none", len(h.s.heap))
	}
}

// A virtual_server_group checks each real server once, not once per address.
func TestLogicGroupCheckedOnce(t *testing.T) {
	cfg := mustParse(t, `
virtual_server_group web {
  192.0.2.1 80
  192.0.2.2 80
  192.0.2.10-20 80
}
virtual_server group web {
    protocol TCP
  delay_loop 5
  real_server 10.0.0.1 80 {
    TCP_CHECK {
      warmup 0
    }
  }
}`)
	p := &fakeProbe{outcome: always(true)}
	h := newHarness(t, cfg, map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": p})
	h.start()
	h.runUntil(at(11 * time.Second))
	if len(p.starts) != 3 {
		t.Fatalf("%d attempts in 11s at delay_loop 5, want 3", len(p.starts))
	}
	if len(h.events) != 1 || h.events[0].VS != "GROUP/web/TCP" || h.events[0].RS != ap("10.0.0.1:80") {
		t.Fatalf("events %+v", h.events)
	}
}

// A reload keeps unchanged checkers (state and timing), stops removed ones
// and starts new ones.
func TestLogicApply(t *testing.T) {
	cfg1 := mustParse(t, oneTCP)
	tcp := &fakeProbe{outcome: always(false)}
	tcp2 := &fakeProbe{outcome: always(true)}
	http := &fakeProbe{outcome: always(true)}
	h := newHarness(t, cfg1, map[string]*fakeProbe{
		"TCP_CHECK 10.0.0.1:80": tcp, "TCP_CHECK 10.0.0.2:80": tcp2, "HTTP_GET 10.0.0.1:80": http})
	h.start()
	h.runUntil(at(3 * time.Second)) // down at 2s
	if got, want := eventsString(h.events), "0s 10.0.0.1:80 up; 2s 10.0.0.1:80 down; "; got != want {
		t.Fatalf("events %q, want %q", got, want)
	}
	h.events = nil
	due := h.s.servers[rsKey{"TCP/192.0.2.1:80", ap("10.0.0.1:80")}].checks[0].due

	// Same configuration, parsed again: nothing changes.
	h.s.Apply(mustParse(t, oneTCP))
	h.collect()
	if len(h.events) != 0 {
		t.Fatalf("events after an identical reload: %s", eventsString(h.events))
	}
	c := h.s.servers[rsKey{"TCP/192.0.2.1:80", ap("10.0.0.1:80")}].checks[0]
	if c.due != due || c.up || len(h.s.heap) != 1 {
		t.Fatalf("checker after reload: due %v (was %v) up %v heap %d", c.due, due, c.up, len(h.s.heap))
	}

	// Add an HTTP_GET to the real server and a new real server.
	cfg2 := mustParse(t, `
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 5
  real_server 10.0.0.1 80 {
    TCP_CHECK {
      retry 2
      delay_before_retry 1
      warmup 0
    }
    HTTP_GET {
      url {
        path /
      }
      warmup 0
    }
  }
  real_server 10.0.0.2 80 {
    TCP_CHECK {
      warmup 0
    }
  }
}`)
	h.s.Apply(cfg2)
	h.collect()
	if got, want := eventsString(h.events), "3s 10.0.0.2:80 up; "; got != want {
		t.Fatalf("events after adding %q, want %q", got, want)
	}
	h.events = nil
	h.runUntil(at(8 * time.Second))
	if len(http.starts) == 0 || http.starts[0] != at(3*time.Second) || tcp2.starts[0] != at(3*time.Second) {
		t.Fatalf("new checkers started at %v and %v, want 3s", durs(http.starts), durs(tcp2.starts))
	}
	if n := len(tcp.starts); n != 4 || tcp.starts[3] != at(7*time.Second) {
		t.Fatalf("kept checker ran at %v, want its old timing (…, 7s)", durs(tcp.starts))
	}

	// Remove the TCP_CHECK: the real server comes up (its HTTP_GET is up).
	cfg3 := mustParse(t, `
virtual_server 192.0.2.1 80 {
    protocol TCP
  delay_loop 5
  real_server 10.0.0.1 80 {
    HTTP_GET {
      url {
        path /
      }
      warmup 0
    }
  }
}`)
	h.s.Apply(cfg3)
	h.collect()
	if got, want := eventsString(h.events), "8s 10.0.0.1:80 up; "; got != want {
		t.Fatalf("events after removing %q, want %q", got, want)
	}
	if len(h.s.heap) != 1 || len(h.s.Snapshot()) != 1 {
		t.Fatalf("heap %d snapshot %d after removals, want 1 and 1", len(h.s.heap), len(h.s.Snapshot()))
	}
	n := len(tcp.starts)
	h.runUntil(at(20 * time.Second))
	if len(tcp.starts) != n || len(tcp2.starts) != 2 {
		t.Fatalf("removed checkers still ran: %v %v", durs(tcp.starts), durs(tcp2.starts))
	}
}

// A reload that changes only timers keeps the checker's state (as keepalived)
// and applies the new period from now on.
func TestLogicApplyNewTimersKeepState(t *testing.T) {
	tcp := &fakeProbe{outcome: always(false)}
	h := newHarness(t, mustParse(t, oneTCP), map[string]*fakeProbe{"TCP_CHECK 10.0.0.1:80": tcp})
	h.start()
	h.runUntil(at(3 * time.Second)) // down at 2s, next attempt due at 7s
	h.events = nil
	h.s.Apply(mustParse(t, strings.Replace(oneTCP, "delay_loop 5", "delay_loop 2", 1)))
	h.collect()
	if len(h.events) != 0 {
		t.Fatalf("events after a timer change: %s", eventsString(h.events))
	}
	h.runUntil(at(8 * time.Second))
	// Due at 7s, pulled in to 3s+2s=5s, then every 2s.
	want := []time.Duration{0, time.Second, 2 * time.Second, 5 * time.Second, 7 * time.Second}
	if got := durs(tcp.starts); !sameDurs(got, want) {
		t.Fatalf("attempts at %v, want %v", got, want)
	}
	if st := h.s.Snapshot()[0]; st.Up || st.Transitions != 1 {
		t.Fatalf("state lost across the reload: %+v", st)
	}
}
