package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"

	"github.com/lvsd/lvsd/conf"
)

// EngineOptions are optional settings of an Engine.
type EngineOptions struct {
	Logger *slog.Logger
	// Notify receives every instance and sync group transition (notify
	// scripts, SNMP, metrics); it is called from runner goroutines and must
	// not block.
	Notify func(Notification)
}

// Engine runs every VRRP instance and sync group of a configuration in the
// current network namespace.
type Engine struct {
	specs   []RunnerSpec
	opts    EngineOptions
	mu      sync.Mutex
	runners []*Runner
}

// NewEngine converts the configuration (see FromConfig); nothing touches
// the kernel before Run.
func NewEngine(c *conf.Config, opts EngineOptions) (*Engine, []string, error) {
	specs, warns, err := FromConfig(c)
	if err != nil {
		return nil, warns, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Engine{specs: specs, opts: opts}, warns, nil
}

type connKey struct {
	ifname  string
	unicast bool
	group   netip.Addr
}

// Run opens the sockets, starts every runner and blocks until ctx is done;
// then masters send priority 0 and release their VIPs, and Run returns.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := map[connKey]*Conn{}
	disps := map[connKey]*Dispatcher{}
	garps := map[string]*PacketGARP{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		for _, g := range garps {
			g.Close()
		}
	}()
	var runners []*Runner
	links := map[string][]func(bool){}
	for _, spec := range e.specs {
		var members []Member
		for i, ic := range spec.Instances {
			// Start from the real link states, not "up until told".
			linkDown := false
			if dev := spec.OwnInterface[i]; dev != "" {
				up, err := LinkUp(dev)
				if err != nil {
					return fmt.Errorf("vrrp: instance %s: %w", ic.Machine.Name, err)
				}
				linkDown = !up
			}
			ic.Tracks = append([]Track(nil), ic.Tracks...)
			for j, t := range ic.Tracks {
				if name, ok := strings.CutPrefix(t.Name, TrackInterfaceName("")); ok {
					up, err := LinkUp(name)
					if err != nil {
						return fmt.Errorf("vrrp: instance %s: track_interface: %w", ic.Machine.Name, err)
					}
					ic.Tracks[j].InitUp = up
				}
			}
			if !ic.Machine.PrimaryIP.IsValid() {
				ip, err := PrimaryIPv4(ic.Interface)
				if err != nil {
					return fmt.Errorf("vrrp: instance %s: %w", ic.Machine.Name, err)
				}
				ic.Machine.PrimaryIP = ip
			}
			k := connKey{ifname: ic.Interface, unicast: len(ic.UnicastPeers) > 0}
			if !k.unicast {
				k.group = ic.defaultGroup()
			}
			conn := conns[k]
			if conn == nil {
				var err error
				conn, err = ListenConn(ConnConfig{Interface: k.ifname, Unicast: k.unicast, Group: k.group})
				if err != nil {
					return err
				}
				conns[k], disps[k] = conn, &Dispatcher{}
			}
			garp := garps[ic.Interface]
			if garp == nil {
				var err error
				if garp, err = NewPacketGARP(ic.Interface); err != nil {
					return err
				}
				garps[ic.Interface] = garp
			}
			members = append(members, Member{Config: ic, Sender: conn, Addrs: &NetlinkAddrs{DefaultDev: ic.Interface}, GARP: garp, LinkDown: linkDown})
		}
		r, err := NewRunner(spec.Name, members, RunnerOptions{Logger: e.opts.Logger, Notify: e.opts.Notify})
		if err != nil {
			return err
		}
		for i, ic := range spec.Instances {
			k := connKey{ifname: ic.Interface, unicast: len(ic.UnicastPeers) > 0}
			if !k.unicast {
				k.group = ic.defaultGroup()
			}
			if err := disps[k].Register(ic.Machine.VRID, r, i); err != nil {
				return fmt.Errorf("vrrp: instance %s: %w", ic.Machine.Name, err)
			}
			if dev := spec.OwnInterface[i]; dev != "" {
				links[dev] = append(links[dev], func(up bool) { r.SetInterface(i, up) })
			}
			for _, t := range ic.Tracks {
				if name, ok := strings.CutPrefix(t.Name, TrackInterfaceName("")); ok {
					links[name] = append(links[name], func(up bool) { r.SetTrack(t.Name, up) })
				}
			}
		}
		runners = append(runners, r)
	}
	e.mu.Lock()
	e.runners = runners
	e.mu.Unlock()

	if err := WatchAddrDeleted(ctx, func(p netip.Prefix) {
		for _, r := range runners {
			r.AddrDeleted(p)
		}
	}); err != nil {
		return err
	}
	for name, fns := range links {
		if err := WatchLink(ctx, name, func(up bool) {
			for _, fn := range fns {
				fn(up)
			}
		}); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(conns)+len(runners))
	for k, c := range conns {
		d := disps[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Serve(ctx, d.Handle); err != nil {
				errs <- fmt.Errorf("vrrp: receiving on %s: %w", k.ifname, err)
				cancel()
			}
		}()
	}
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// SetScript reports the status of a vrrp_script to every instance that
// tracks it.
func (e *Engine) SetScript(name string, up bool) {
	e.mu.Lock()
	rs := e.runners
	e.mu.Unlock()
	for _, r := range rs {
		r.SetTrack(TrackScriptName(name), up)
	}
}

// Status returns a snapshot of every instance.
func (e *Engine) Status() []InstanceStatus {
	e.mu.Lock()
	rs := e.runners
	e.mu.Unlock()
	var out []InstanceStatus
	for _, r := range rs {
		out = append(out, r.Status()...)
	}
	return out
}
