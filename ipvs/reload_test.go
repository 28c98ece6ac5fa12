package ipvs

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
)

const carryConf = `# reload test
virtual_server_group web {
	192.0.2.10 80
	192.0.2.11 80
}
virtual_server 192.0.2.1 80 {
	protocol TCP
	lvs_sched wrr
	real_server 10.0.0.1 80 {
		weight 1
		TCP_CHECK {
		}
	}
	real_server 10.0.0.2 80 {
		weight 2
		TCP_CHECK {
		}
	}
}
virtual_server 192.0.2.2 80 {
	protocol TCP
	real_server 10.0.0.3 80 {
		weight 3
	}
}
virtual_server group web {
	protocol TCP
	real_server 10.0.0.4 80 {
		weight 4
	}
}
`

// checkCarried asserts that the reconciler's desired state is what a full
// computation gives, and that the kernel holds it.
func checkCarried(t *testing.T, h *harness) {
	t.Helper()
	h.r.Snapshot()
	h.r.state.Lock()
	defer h.r.state.Unlock()
	full := ComputeDesired(h.r.cfg, h.r.health)
	if got, want := h.r.desired.Table.String(), full.Table.String(); got != want {
		t.Fatalf("carried desired table:\n%s\nfull computation:\n%s", got, want)
	}
	if got, want := strings.Join(h.r.desired.Problems, "\n"), strings.Join(full.Problems, "\n"); got != want {
		t.Fatalf("carried problems:\n%s\nfull computation:\n%s", got, want)
	}
	if got, want := h.k.table().String(), full.Table.String(); got != want {
		t.Fatalf("kernel:\n%s\nwant:\n%s", got, want)
	}
}

func TestReloadCarriesUnchangedVirtualServers(t *testing.T) {
	h := newHarness(t, parse(t, carryConf), nil, Options{})
	h.start()
	h.r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.1:80", false, -1))
	h.r.Snapshot()
	h.k.mutations()

	// Lines move (a comment on top), one weight changes elsewhere: the
	// moved virtual servers are unchanged, the down server stays down,
	// and the one change is the one mutation.
	next := strings.Replace("# one more line\n"+carryConf, "weight 3", "weight 7", 1)
	h.r.Apply(parse(t, next))
	checkCarried(t, h)
	h.wantMutations("update-dest TCP 192.0.2.2:80 -> 10.0.0.3:80 masq w7")
	h.r.state.Lock()
	up := h.r.health["TCP/192.0.2.1:80"].RS[netip.MustParseAddrPort("10.0.0.1:80")].Up
	h.r.state.Unlock()
	if up {
		t.Error("the reload brought a down real server of an unchanged virtual server back up")
	}

	// A group changes: its virtual server is recomputed.
	next = strings.Replace(next, "192.0.2.11 80\n", "192.0.2.11 80\n\t192.0.2.12 80\n", 1)
	h.r.Apply(parse(t, next))
	checkCarried(t, h)
	h.wantMutations("create-service TCP 192.0.2.12:80 wlc", "create-dest TCP 192.0.2.12:80 -> 10.0.0.4:80 masq w4")

	// A virtual server goes: its services go, the others stay.
	next = strings.Replace(next, "virtual_server 192.0.2.2 80 {\n\tprotocol TCP\n\treal_server 10.0.0.3 80 {\n\t\tweight 7\n\t}\n}\n", "", 1)
	h.r.Apply(parse(t, next))
	checkCarried(t, h)
	h.wantMutations("remove-service TCP 192.0.2.2:80")

	// Health events in the same pass as a reload apply to the new state.
	h.r.Apply(parse(t, next))
	h.r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.1:80", true, -1))
	checkCarried(t, h)
	h.wantMutations("create-dest TCP 192.0.2.1:80 -> 10.0.0.1:80 masq w1")
}

// TestReloadCarryEqualsFullComputation reloads random variants of a
// configuration, with health events between them, and checks every time
// that carrying unchanged virtual servers over gives what computing
// everything again gives, in the desired state and in the kernel.
func TestReloadCarryEqualsFullComputation(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	variant := func() string {
		var b strings.Builder
		for i := 0; i < rng.IntN(3); i++ {
			b.WriteString("# shift\n")
		}
		b.WriteString("virtual_server_group g {\n")
		for i := 0; i < 1+rng.IntN(3); i++ {
			fmt.Fprintf(&b, "\t192.0.2.%d 80\n", 20+i)
		}
		if rng.IntN(4) == 0 {
			b.WriteString("\t192.0.2.1 80\n") // conflicts with virtual server 1
		}
		b.WriteString("}\n")
		for v := 1; v <= 4; v++ {
			if rng.IntN(6) == 0 {
				continue // this one is gone
			}
			if v == 4 {
				b.WriteString("virtual_server group g {\n\tprotocol TCP\n")
			} else {
				fmt.Fprintf(&b, "virtual_server 192.0.2.%d 80 {\n\tprotocol TCP\n", v)
			}
			if rng.IntN(3) == 0 {
				b.WriteString("\tlvs_sched rr\n")
			}
			if rng.IntN(3) == 0 {
				b.WriteString("\tinhibit_on_failure\n")
			}
			if rng.IntN(4) == 0 {
				b.WriteString("\tpersistence_timeout 60\n\tpersistence_engine sip\n")
			}
			if rng.IntN(4) == 0 {
				b.WriteString("\tquorum 3\n\tsorry_server 10.0.9.9 80\n")
			}
			for r := 1; r <= 3; r++ {
				if rng.IntN(4) == 0 {
					continue
				}
				fmt.Fprintf(&b, "\treal_server 10.0.%d.%d 80 {\n\t\tweight %d\n\t\tTCP_CHECK {\n\t\t}\n\t}\n", v, r, 1+rng.IntN(2))
			}
			b.WriteString("}\n")
		}
		return b.String()
	}
	lenient := func(text string) *conf.Config { // errors drop elements, as at run time
		cfg, _ := conf.Parse("test.conf", text, conf.Options{ConfigID: "test"})
		return cfg
	}
	h := newHarness(t, lenient(variant()), nil, Options{})
	h.start()
	keys := []string{"TCP/192.0.2.1:80", "TCP/192.0.2.2:80", "TCP/192.0.2.3:80", "GROUP/g/TCP"}
	for round := 0; round < 300; round++ {
		text := variant()
		h.r.Apply(lenient(text))
		for i := 0; i < rng.IntN(4); i++ {
			v := 1 + rng.IntN(4)
			h.r.SetHealth(*ev(keys[v-1], fmt.Sprintf("10.0.%d.%d:80", v, 1+rng.IntN(3)), rng.IntN(2) == 0, -1))
		}
		if t.Failed() {
			break
		}
		checkCarried(t, h)
		if t.Failed() {
			t.Logf("round %d, configuration:\n%s", round, text)
			break
		}
	}
}

// slowReader is a Kernel whose Services call waits until released: a
// scrape of a very large table.
type slowReader struct {
	*fakeKernel
	entered, release chan struct{}
}

func (s *slowReader) Services() ([]ServiceInfo, error) {
	close(s.entered)
	<-s.release
	return s.fakeKernel.Services()
}

// With Options.Reader a Snapshot reads the kernel in its caller's
// goroutine: the reconciler goes on applying health changes meanwhile,
// and the snapshot still has fresh counters.
func TestSnapshotReaderDoesNotBlockReconciling(t *testing.T) {
	k := newFakeKernel()
	rd := &slowReader{fakeKernel: k, entered: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, parse(t, twoServers), k, Options{Reader: rd})
	h.start()
	h.k.mutations()
	got := make(chan *Snapshot, 1)
	go func() { got <- h.r.Snapshot() }()
	select {
	case <-rd.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the snapshot did not read through the Reader")
	}
	// The reader is stuck; a health change still reaches the kernel.
	h.r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.1:80", false, -1))
	deadline := time.Now().Add(5 * time.Second)
	for len(h.k.table()[ServiceKey{Family: INET, Proto: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}].Dests) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the reconciler was held up by a snapshot's kernel read")
		}
		time.Sleep(time.Millisecond)
	}
	close(rd.release)
	s := <-got
	if !s.Fresh || len(s.Services) != 2 || s.Services[0].Stats.Connections != 7 {
		t.Fatalf("snapshot: fresh %v, %d services, %+v", s.Fresh, len(s.Services), s.Services)
	}
	// The picture was taken before the change, the counters read after it.
	var conns uint32
	for _, d := range s.Services[0].Dests {
		if d.Key.Addr == netip.MustParseAddr("10.0.0.2") {
			conns = d.ActiveConns
		}
	}
	if conns != 3 {
		t.Fatalf("destination counters: %+v", s.Services[0].Dests)
	}
}

// countingReader counts the table reads (one Services call each).
type countingReader struct {
	*fakeKernel
	mu    sync.Mutex
	reads int
}

func (c *countingReader) Services() ([]ServiceInfo, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.fakeKernel.Services()
}

func (c *countingReader) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// Snapshots through a Reader read the table at most once per ReadEvery,
// however many ask at once, unless the reconciler changed the kernel in
// between: then the next one reads it again.
func TestSnapshotReadsBounded(t *testing.T) {
	k := newFakeKernel()
	rd := &countingReader{fakeKernel: k}
	h := newHarness(t, parse(t, twoServers), k, Options{Reader: rd, ReadEvery: time.Hour})
	h.start()
	h.k.mutations()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s := h.r.Snapshot(); !s.Fresh || len(s.Services) != 2 {
				t.Errorf("snapshot: fresh %v, %d services", s.Fresh, len(s.Services))
			}
		}()
	}
	wg.Wait()
	if n := rd.count(); n != 1 {
		t.Fatalf("50 snapshots read the table %d times, want once", n)
	}
	// A mutation: the next snapshot sees the kernel as it is now.
	h.r.SetHealth(*ev("TCP/192.0.2.1:80", "10.0.0.1:80", false, -1))
	sk := ServiceKey{Family: INET, Proto: TCP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.r.Snapshot()
		if s.Services[0].Key == sk && len(s.Services[0].Dests) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot still shows the removed destination: %+v", s.Services[0])
		}
		time.Sleep(time.Millisecond)
	}
	if n := rd.count(); n < 2 {
		t.Fatalf("%d reads after a mutation, want a new one", n)
	}
}
