package vrrp

import (
	"net/netip"
	"sync"
	"time"
)

// pacedGARP spaces out the gratuitous ARPs and the unsolicited neighbour
// advertisements sent on one interface, as keepalived's vrrp_garp_interval
// and vrrp_gna_interval do: successive gratuitous ARPs leave the interface
// at least the ARP interval apart, successive advertisements at least the
// NA interval apart (each family has its own pace). A packet that is not
// yet due is queued and sent from a timer, so SendGARP never blocks; an
// interval of 0 sends at once.
type pacedGARP struct {
	inner GARPSender

	mu     sync.Mutex
	fam    [2]paceState // 0: ARP, 1: NA
	closed bool
	now    func() time.Time
	after  func(time.Duration, func()) *time.Timer
}

type paceState struct {
	interval time.Duration
	next     time.Time // the earliest time of the next packet
	queue    []netip.Addr
	timer    *time.Timer
}

// newPacedGARP paces inner with the given intervals.
func newPacedGARP(inner GARPSender, garpInterval, gnaInterval time.Duration) *pacedGARP {
	g := &pacedGARP{inner: inner, now: time.Now, after: time.AfterFunc}
	g.fam[0].interval, g.fam[1].interval = garpInterval, gnaInterval
	return g
}

// SetIntervals changes the intervals (a reload); packets already queued
// keep their place.
func (g *pacedGARP) SetIntervals(garpInterval, gnaInterval time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fam[0].interval, g.fam[1].interval = garpInterval, gnaInterval
}

func family(ip netip.Addr) int {
	if ip.Unmap().Is6() {
		return 1
	}
	return 0
}

// SendGARP sends the packet for ip now if the interface's pace allows it,
// or queues it. Only an immediate send reports an error; a queued
// packet that fails is dropped.
func (g *pacedGARP) SendGARP(ip netip.Addr) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	f := &g.fam[family(ip)]
	if f.interval <= 0 && len(f.queue) == 0 {
		return g.inner.SendGARP(ip)
	}
	now := g.now()
	if len(f.queue) == 0 && !now.Before(f.next) {
		f.next = now.Add(f.interval)
		return g.inner.SendGARP(ip)
	}
	f.queue = append(f.queue, ip)
	if f.timer == nil {
		fi := family(ip)
		f.timer = g.after(f.next.Sub(now), func() { g.flush(fi) })
	}
	return nil
}

// flush sends the head of a family's queue and schedules the next one.
func (g *pacedGARP) flush(fi int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f := &g.fam[fi]
	f.timer = nil
	if g.closed || len(f.queue) == 0 {
		return
	}
	now := g.now()
	if now.Before(f.next) { // a timer firing early
		f.timer = g.after(f.next.Sub(now), func() { g.flush(fi) })
		return
	}
	ip := f.queue[0]
	f.queue = f.queue[1:]
	f.next = now.Add(f.interval)
	_ = g.inner.SendGARP(ip)
	if len(f.queue) > 0 {
		f.timer = g.after(f.interval, func() { g.flush(fi) })
	}
}

// Queued is the number of packets waiting.
func (g *pacedGARP) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.fam[0].queue) + len(g.fam[1].queue)
}

// Close drops the queued packets and closes inner if it is a GARPConn.
func (g *pacedGARP) Close() error {
	g.mu.Lock()
	g.closed = true
	for i := range g.fam {
		if g.fam[i].timer != nil {
			g.fam[i].timer.Stop()
		}
		g.fam[i].queue = nil
	}
	g.mu.Unlock()
	if c, ok := g.inner.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
