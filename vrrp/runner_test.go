package vrrp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsd/lvsd/vrrp/advert"
)

// recorder is a fake kernel: it records every call with the fake time.
type recorder struct {
	mu    sync.Mutex
	clk   *fakeClock
	calls []call
	addrs map[netip.Prefix]bool
}

type call struct {
	at   time.Duration // since epoch
	what string
}

func (r *recorder) rec(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{r.clk.Now().Sub(epoch), fmt.Sprintf(format, a...)})
}

func (r *recorder) SendAdvert(b []byte, src, dst netip.Addr) error {
	a, drop := advert.Decode(b, advert.PacketInfo{Src: src, Dst: dst, TTL: 255})
	if drop != advert.DropNone {
		return fmt.Errorf("sent an undecodable advert: %v", drop)
	}
	r.rec("advert prio=%d dst=%v", a.Priority, dst)
	return nil
}

func (r *recorder) AddAddr(v VIP) error {
	r.mu.Lock()
	r.addrs[v.Addr] = true
	r.mu.Unlock()
	r.rec("add %v", v.Addr)
	return nil
}

func (r *recorder) DelAddr(v VIP) error {
	r.mu.Lock()
	delete(r.addrs, v.Addr)
	r.mu.Unlock()
	r.rec("del %v", v.Addr)
	return nil
}

func (r *recorder) SendGARP(ip netip.Addr) error {
	r.rec("garp %v", ip)
	return nil
}

// take returns and clears the recorded calls matching prefix ("" = all).
func (r *recorder) take(prefix string) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out, keep []call
	for _, c := range r.calls {
		if strings.HasPrefix(c.what, prefix) {
			out = append(out, c)
		} else {
			keep = append(keep, c)
		}
	}
	r.calls = keep
	return out
}

type harness struct {
	t      *testing.T
	clk    *fakeClock
	rec    *recorder
	r      *runner
	cancel context.CancelFunc
	ran    chan struct{}
	notes  chan Notification
}

var testVIP = VIP{Addr: netip.MustParsePrefix("192.0.2.100/24")}

func instCfg(mod func(*instanceConfig)) instanceConfig {
	c := instanceConfig{Machine: baseCfg(), Interface: "eth0", VIPs: []VIP{testVIP}}
	if mod != nil {
		mod(&c)
	}
	return c
}

func newHarness(t *testing.T, cfgs ...instanceConfig) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), notes: make(chan Notification, 64)}
	h.rec = &recorder{clk: h.clk, addrs: map[netip.Prefix]bool{}}
	var ms []memberSpec
	for _, c := range cfgs {
		ms = append(ms, memberSpec{Config: c, Sender: h.rec, Addrs: h.rec, GARP: h.rec})
	}
	r, err := newRunner("G", ms, runnerOptions{
		Clock: h.clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Notify: func(n Notification) { h.notes <- n },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.ran = make(chan struct{})
	go func() { defer close(h.ran); _ = r.Run(ctx) }()
	t.Cleanup(h.stop)
	r.Flush()
	return h
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.ran:
	case <-time.After(5 * time.Second):
		h.t.Fatal("runner did not stop")
	}
}

// advance moves the fake clock by d, timer by timer, letting the runner
// handle each fired timer (and arm the next ones) before going on.
func (h *harness) advance(d time.Duration) {
	end := h.clk.Now().Add(d)
	for range 100000 {
		next, ok := h.clk.Next()
		if !ok || next.After(end) {
			break
		}
		h.clk.Advance(next.Sub(h.clk.Now()))
		h.r.Flush()
	}
	h.clk.Advance(end.Sub(h.clk.Now()))
	h.r.Flush()
}

func (h *harness) packet(i int, src netip.Addr, mod func(*advert.Advert), info func(*advert.PacketInfo)) {
	a := advert.Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{testVIP.Addr.Addr()}}
	if mod != nil {
		mod(&a)
	}
	b, err := a.Marshal(src, advert.MulticastGroup)
	if err != nil {
		h.t.Fatal(err)
	}
	pi := advert.PacketInfo{Src: src, Dst: advert.MulticastGroup, TTL: 255}
	if info != nil {
		info(&pi)
	}
	h.r.HandlePacket(i, b, pi)
	h.r.Flush()
}

func times(cs []call) []time.Duration {
	var out []time.Duration
	for _, c := range cs {
		out = append(out, c.at)
	}
	return out
}

func TestRunnerBackupToMasterTiming(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	if got := h.rec.take("del"); len(got) != 1 || got[0].at != 0 {
		t.Fatalf("leftover VIPs not removed at start: %v", got)
	}
	h.advance(mdi100 - time.Nanosecond)
	if got := h.rec.take(""); len(got) != 0 {
		t.Fatalf("acted before Master_Down_Interval: %v", got)
	}
	h.advance(time.Nanosecond)
	h.advance(10 * time.Second)
	calls := h.rec.take("")
	var adverts, garps, adds []call
	for _, c := range calls {
		switch {
		case strings.HasPrefix(c.what, "advert"):
			adverts = append(adverts, c)
		case strings.HasPrefix(c.what, "garp"):
			garps = append(garps, c)
		case strings.HasPrefix(c.what, "add"):
			adds = append(adds, c)
		}
	}
	if len(adds) != 1 || adds[0].at != mdi100 {
		t.Fatalf("VIP add: %v", adds)
	}
	// adverts at takeover and every advert_int after it
	if len(adverts) != 11 {
		t.Fatalf("%d adverts: %v", len(adverts), adverts)
	}
	for i, c := range adverts {
		if want := mdi100 + time.Duration(i)*time.Second; c.at != want || c.what != "advert prio=100 dst=224.0.0.18" {
			t.Fatalf("advert %d: %v, want at %v", i, c, want)
		}
	}
	// garp_master_repeat 5 at once, 5 more after garp_master_delay 5s
	if len(garps) != 10 {
		t.Fatalf("%d GARPs", len(garps))
	}
	for i, c := range garps {
		want := mdi100
		if i >= 5 {
			want += 5 * time.Second
		}
		if c.at != want {
			t.Fatalf("GARP %d at %v, want %v", i, c.at, want)
		}
	}
	if st := h.r.Status()[0]; st.State != StateMaster || h.r.Stats(0).BecomeMaster.Load() != 1 {
		t.Fatalf("status %+v", st)
	}
	n := <-h.notes
	if n.From != StateInit || n.To != StateBackup {
		t.Fatalf("first notification %+v", n)
	}
	if n = <-h.notes; n.To != StateMaster || n.Instance != "VI_1" {
		t.Fatalf("second notification %+v", n)
	}
}

func TestRunnerHigherMasterKeepsBackupThenTakeover(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.rec.take("")
	for range 10 {
		h.advance(time.Second)
		h.packet(0, peer, nil, nil)
	}
	if got := h.rec.take(""); len(got) != 0 {
		t.Fatalf("backup acted while the master advertised: %v", got)
	}
	last := h.clk.Now().Sub(epoch)
	h.advance(10 * time.Second)
	adv := h.rec.take("advert")
	if len(adv) == 0 || adv[0].at != last+mdi100 {
		t.Fatalf("takeover %v, want at %v", times(adv), last+mdi100)
	}
	if h.r.Stats(0).AdvertRcvd.Load() != 10 {
		t.Fatalf("received %d", h.r.Stats(0).AdvertRcvd.Load())
	}
}

func TestRunnerPriorityZeroFastTakeover(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.rec.take("")
	h.advance(time.Second)
	h.packet(0, peer, nil, nil)
	h.advance(time.Second)
	h.packet(0, peer, func(a *advert.Advert) { a.Priority = 0 }, nil)
	h.advance(time.Second)
	adv := h.rec.take("advert")
	if len(adv) == 0 || adv[0].at != 2*time.Second+skew100 {
		t.Fatalf("takeover at %v, want %v (Skew_Time after priority 0)", times(adv), 2*time.Second+skew100)
	}
	if h.r.Stats(0).PriZeroRcvd.Load() != 1 {
		t.Fatal("priority 0 not counted")
	}
}

func TestRunnerDropsAreCountedAndDoNotResetTimer(t *testing.T) {
	pass := instCfg(func(c *instanceConfig) { c.AuthType, c.AuthPass = advert.AuthPass, "secret" })
	h := newHarness(t, pass)
	h.rec.take("")
	withPass := func(a *advert.Advert) { a.AuthType, a.AuthData = advert.AuthPass, advert.Password("secret") }
	bad := []struct {
		name string
		mod  func(*advert.Advert)
		info func(*advert.PacketInfo)
		want advert.DropReason
	}{
		{"ttl", withPass, func(p *advert.PacketInfo) { p.TTL = 1 }, advert.DropTTL},
		{"password", func(a *advert.Advert) { a.AuthType, a.AuthData = advert.AuthPass, advert.Password("nope") }, nil, advert.DropAuthFailure},
		{"auth type", nil, nil, advert.DropAuthType},
		{"interval", func(a *advert.Advert) { withPass(a); a.Interval = 2 * time.Second }, nil, advert.DropInterval},
		{"version", func(a *advert.Advert) { a.Version = 3 }, nil, advert.DropVersion},
	}
	for i := range 3 {
		for _, b := range bad {
			h.advance(200 * time.Millisecond)
			h.packet(0, peer, b.mod, b.info)
			if got := h.r.Stats(0).Drops[b.want].Load(); got != uint64(i+1) {
				t.Fatalf("%s: %v counted %d times", b.name, b.want, got)
			}
		}
	}
	// an address list mismatch is counted but accepted (it resets the timer)
	h.packet(0, peer, func(a *advert.Advert) { withPass(a); a.Addrs = []netip.Addr{vip2} }, nil)
	if h.r.Stats(0).AddrListErr.Load() != 1 || h.r.Stats(0).AdvertRcvd.Load() != 1 {
		t.Fatal("address list mismatch not counted as accepted")
	}
	resetAt := h.clk.Now().Sub(epoch)
	// own packets are ignored
	h.packet(0, ours, withPass, nil)
	if h.r.Stats(0).OwnPackets.Load() != 1 {
		t.Fatal("own packet not ignored")
	}
	h.advance(10 * time.Second)
	adv := h.rec.take("advert")
	if len(adv) == 0 || adv[0].at != resetAt+mdi100 {
		t.Fatalf("takeover at %v, want %v", times(adv), resetAt+mdi100)
	}
}

func TestRunnerGracefulStopSendsPriorityZero(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.advance(5 * time.Second)
	h.rec.take("")
	h.stop()
	calls := h.rec.take("")
	if len(calls) != 2 || calls[0].what != "advert prio=0 dst=224.0.0.18" || calls[1].what != "del 192.0.2.100/24" {
		t.Fatalf("shutdown calls %v", calls)
	}
	if h.r.Stats(0).PriZeroSent.Load() != 1 {
		t.Fatal("priority 0 not counted")
	}
}

func TestRunnerRestoresDeletedVIP(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	h.r.AddrDeleted(testVIP.Addr) // backup: not ours to restore
	h.r.Flush()
	h.advance(5 * time.Second)
	h.rec.take("")
	h.r.AddrDeleted(netip.MustParsePrefix("192.0.2.77/24")) // not a VIP
	h.r.AddrDeleted(testVIP.Addr)
	h.r.Flush()
	got := h.rec.take("add")
	if len(got) != 1 || h.r.Stats(0).VIPRestored.Load() != 1 {
		t.Fatalf("restore calls %v, count %d", got, h.r.Stats(0).VIPRestored.Load())
	}
}

func TestRunnerUnicastSendsToEachPeer(t *testing.T) {
	p1, p2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	h := newHarness(t, instCfg(func(c *instanceConfig) {
		c.Machine.Version = 3
		c.UnicastPeers = []netip.Addr{p1, p2}
		c.CheckUnicastSrc = true
	}))
	h.advance(4 * time.Second)
	adv := h.rec.take("advert")
	if len(adv) != 2 || adv[0].what != "advert prio=100 dst=203.0.113.1" || adv[1].what != "advert prio=100 dst=203.0.113.2" {
		t.Fatalf("unicast adverts %v", adv)
	}
	// a unicast advert from a non-peer is dropped; TTL is not checked in unicast
	a := advert.Advert{Version: 3, VRID: 51, Priority: 200, Interval: time.Second, Addrs: []netip.Addr{testVIP.Addr.Addr()}}
	for _, src := range []netip.Addr{peer, p1} {
		b, _ := a.Marshal(src, ours)
		h.r.HandlePacket(0, b, advert.PacketInfo{Src: src, Dst: ours, TTL: 60})
	}
	h.r.Flush()
	if h.r.Stats(0).Drops[advert.DropNotPeer].Load() != 1 || h.r.Status()[0].State != StateBackup {
		t.Fatalf("not-peer drops %d, state %v", h.r.Stats(0).Drops[advert.DropNotPeer].Load(), h.r.Status()[0].State)
	}
}

func TestRunnerTrackingAndInterface(t *testing.T) {
	h := newHarness(t, instCfg(func(c *instanceConfig) {
		c.Tracks = []track{{Name: "chk", Weight: 0, InitUp: true}, {Name: "w", Weight: 50, InitUp: false}}
	}))
	h.advance(5 * time.Second)
	h.r.SetTrack("w", true)
	h.advance(time.Second)
	if adv := h.rec.take("advert"); adv[len(adv)-1].what != "advert prio=150 dst=224.0.0.18" {
		t.Fatalf("weighted priority not advertised: %v", adv)
	}
	h.r.SetTrack("chk", false)
	h.r.Flush()
	if st := h.r.Status()[0]; st.State != StateFault {
		t.Fatalf("state %v", st.State)
	}
	h.r.SetTrack("chk", true)
	h.r.Flush()
	h.r.SetInterface(0, false)
	h.r.Flush()
	if st := h.r.Status()[0]; st.State != StateFault {
		t.Fatalf("state %v after interface down", st.State)
	}
	h.r.SetInterface(0, true)
	h.r.Flush()
	if st := h.r.Status()[0]; st.State != StateBackup {
		t.Fatalf("state %v after interface up", st.State)
	}
}

func TestRunnerSyncGroup(t *testing.T) {
	a := instCfg(func(c *instanceConfig) { c.Machine.Name = "A" })
	b := instCfg(func(c *instanceConfig) {
		c.Machine.Name, c.Machine.VRID = "B", 52
		c.VIPs = []VIP{{Addr: netip.MustParsePrefix("198.51.100.7/32"), Dev: "eth1"}}
	})
	h := newHarness(t, a, b)
	// B hears a higher master, A does not: A times out and pulls B along.
	higherB := func(a *advert.Advert) { a.VRID = 52; a.Addrs = []netip.Addr{vip2} }
	for range 3 {
		h.advance(time.Second)
		h.packet(1, peer, higherB, nil)
	}
	h.advance(mdi100 - 3*time.Second)
	st := h.r.Status()
	if st[0].State != StateMaster || st[1].State != StateMaster {
		t.Fatalf("after A's timeout: states %v %v", st[0].State, st[1].State)
	}
	// B, now master, hears the higher master again: both go back to BACKUP.
	h.packet(1, peer, higherB, nil)
	st = h.r.Status()
	if st[0].State != StateBackup || st[1].State != StateBackup {
		t.Fatalf("after B heard higher: states %v %v", st[0].State, st[1].State)
	}
	h.r.SetInterface(1, false)
	h.r.Flush()
	st = h.r.Status()
	if st[0].State != StateFault || st[1].State != StateFault {
		t.Fatalf("states %v %v", st[0].State, st[1].State)
	}
}

func TestDispatcher(t *testing.T) {
	h := newHarness(t, instCfg(nil))
	var d dispatcher
	if err := d.Register(51, h.r, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Register(51, h.r, 0); err == nil {
		t.Fatal("duplicate VRID accepted")
	}
	a := advert.Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{testVIP.Addr.Addr()}}
	b, _ := a.Marshal(peer, advert.MulticastGroup)
	d.Handle(b, advert.PacketInfo{Src: peer, Dst: advert.MulticastGroup, TTL: 255})
	a.VRID = 99
	b2, _ := a.Marshal(peer, advert.MulticastGroup)
	d.Handle(b2, advert.PacketInfo{Src: peer, Dst: advert.MulticastGroup, TTL: 255})
	d.Handle([]byte{1}, advert.PacketInfo{})
	h.r.Flush()
	if h.r.Stats(0).AdvertRcvd.Load() != 1 || d.Drops[advert.DropUnknownVRID].Load() != 1 || d.Drops[advert.DropTooShort].Load() != 1 {
		t.Fatalf("rcvd %d unknown %d short %d", h.r.Stats(0).AdvertRcvd.Load(), d.Drops[advert.DropUnknownVRID].Load(), d.Drops[advert.DropTooShort].Load())
	}
	if h.r.Stats(0).Drops[advert.DropUnknownVRID].Load() != 0 {
		t.Fatal("unknown VRID counted against the instance")
	}
}

func TestNewRunnerErrors(t *testing.T) {
	rec := &recorder{clk: newFakeClock(), addrs: map[netip.Prefix]bool{}}
	for name, c := range map[string]instanceConfig{
		"no source": instCfg(func(c *instanceConfig) { c.Machine.PrimaryIP = netip.Addr{} }),
		"v3 auth":   instCfg(func(c *instanceConfig) { c.Machine.Version = 3; c.AuthType = advert.AuthPass }),
		"ipv6 vip":  instCfg(func(c *instanceConfig) { c.VIPs = []VIP{{Addr: netip.MustParsePrefix("2001:db8::1/64")}} }),
		"bad track": instCfg(func(c *instanceConfig) { c.Tracks = []track{{Name: "a"}, {Name: "a"}} }),
		"vrid 0":    instCfg(func(c *instanceConfig) { c.Machine.VRID = 0 }),
	} {
		if _, err := newRunner("x", []memberSpec{{Config: c, Sender: rec, Addrs: rec}}, runnerOptions{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := newRunner("x", nil, runnerOptions{}); err == nil {
		t.Error("empty runner accepted")
	}
	if _, err := newRunner("x", []memberSpec{{Config: instCfg(nil)}}, runnerOptions{}); err == nil {
		t.Error("runner without kernel access accepted")
	}
}

func TestRunnerStartsInFaultWithLinkDown(t *testing.T) {
	clk := newFakeClock()
	rec := &recorder{clk: clk, addrs: map[netip.Prefix]bool{}}
	notes := make(chan Notification, 8)
	r, err := newRunner("x", []memberSpec{{Config: instCfg(nil), Sender: rec, Addrs: rec, LinkDown: true}},
		runnerOptions{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(n Notification) { notes <- n }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	r.Flush()
	if n := <-notes; n.From != StateInit || n.To != StateFault {
		t.Fatalf("first transition %+v, want INIT -> FAULT", n)
	}
	cancel()
	<-done
}
