package vrrp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// The netns tests run the engine in helper processes: the test binary
// re-executes itself inside "ip netns exec" with helperEnv set, so that a
// master can really be killed with SIGKILL.
const helperEnv = "LVSD_VRRP_HELPER"

type helperConfig struct {
	Interface     string
	Name          string
	VRID          uint8
	Version       uint8
	Priority      uint8
	AdvertMillis  int
	VIP           string
	Brd           string
	Label         string
	GARPDelayMS   int
	GARPRepeat    int
	LifetimeMS    int
	UnicastPeers  []string
	InitialMaster bool
	// ConfText, when set, runs an Engine from this keepalived-syntax
	// configuration instead of a single hand-built instance.
	ConfText string
}

// helperLine is one line of the helper's stdout.
type helperLine struct {
	Event    string // "ready", "transition", "stats", "error"
	From, To string
	Priority uint8
	At       time.Time
	Stats    map[string]uint64 `json:",omitempty"`
	Err      string            `json:",omitempty"`
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(helperMain(cfg))
	}
	code := m.Run()
	if lvsdBuild.dir != "" {
		os.RemoveAll(lvsdBuild.dir)
	}
	os.Exit(code)
}

func helperMain(cfgJSON string) int {
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(l helperLine) {
		mu.Lock()
		defer mu.Unlock()
		l.At = time.Now()
		_ = enc.Encode(l)
	}
	fail := func(err error) int {
		emit(helperLine{Event: "error", Err: err.Error()})
		return 1
	}
	var hc helperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &hc); err != nil {
		return fail(err)
	}
	if hc.ConfText != "" {
		return helperEngine(hc, emit, fail)
	}
	src, err := primaryIPv4(hc.Interface)
	if err != nil {
		return fail(err)
	}
	vip := VIP{Addr: netip.MustParsePrefix(hc.VIP), Label: hc.Label}
	if hc.Brd != "" {
		vip.Brd = netip.MustParseAddr(hc.Brd)
	}
	ic := instanceConfig{
		Machine: machineConfig{
			Name: hc.Name, VRID: hc.VRID, Version: hc.Version, Priority: hc.Priority,
			AdvertInterval: time.Duration(hc.AdvertMillis) * time.Millisecond, PrimaryIP: src,
			GARPMasterDelay: time.Duration(hc.GARPDelayMS) * time.Millisecond, GARPMasterRepeat: hc.GARPRepeat,
		},
		Interface: hc.Interface,
		VIPs:      []VIP{vip},
	}
	if hc.InitialMaster {
		ic.Machine.InitialState = StateMaster
	}
	for _, p := range hc.UnicastPeers {
		ic.UnicastPeers = append(ic.UnicastPeers, netip.MustParseAddr(p))
	}
	conn, err := listenConn(ConnConfig{Interface: hc.Interface, Unicast: len(ic.UnicastPeers) > 0})
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	garp, err := newPacketGARP(hc.Interface)
	if err != nil {
		return fail(err)
	}
	defer garp.Close()
	r, err := newRunner(hc.Name, []memberSpec{{Config: ic, Sender: conn, Addrs: &netlinkAddrs{DefaultDev: hc.Interface}, GARP: garp}},
		runnerOptions{
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
			Notify: func(n Notification) {
				emit(helperLine{Event: "transition", From: n.From.String(), To: n.To.String(), Priority: n.Priority})
			},
		})
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(hc.LifetimeMS)*time.Millisecond)
	defer cancel()
	var d dispatcher
	if err := d.Register(hc.VRID, r, 0); err != nil {
		return fail(err)
	}
	go func() { _ = conn.Serve(ctx, &d) }()
	if err := watchAddrDeleted(ctx, nil, r.AddrDeleted, nil); err != nil {
		return fail(err)
	}
	if err := watchLink(ctx, nil, hc.Interface, func(up bool) { r.SetInterface(0, up) }, nil); err != nil {
		return fail(err)
	}
	emit(helperLine{Event: "ready"})
	if err := r.Run(ctx); err != nil {
		return fail(err)
	}
	s := r.Stats(0)
	emit(helperLine{Event: "stats", Stats: map[string]uint64{
		"advert_sent": s.AdvertSent.Load(), "advert_rcvd": s.AdvertRcvd.Load(),
		"pri_zero_sent": s.PriZeroSent.Load(), "vip_restored": s.VIPRestored.Load(),
		"garp_sent": s.GARPSent.Load(), "own_packets": s.OwnPackets.Load(),
	}})
	return 0
}

// helperProc is a running helper.
type helperProc struct {
	name  string
	lines chan helperLine
	done  chan struct{}
	kill  func(sig syscall.Signal)
}

func (h *helperProc) await(t *testing.T, timeout time.Duration, ok func(helperLine) bool) helperLine {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, open := <-h.lines:
			if !open {
				t.Fatalf("%s: helper exited while waiting", h.name)
			}
			if l.Event == "error" {
				t.Fatalf("%s: helper error: %s", h.name, l.Err)
			}
			if ok(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("%s: nothing matching after %v", h.name, timeout)
		}
	}
}

func isTo(state string) func(helperLine) bool {
	return func(l helperLine) bool { return l.Event == "transition" && l.To == state }
}

func fmtStderr(name string, r io.Reader) {
	b, _ := io.ReadAll(r)
	if len(b) > 0 {
		fmt.Fprintf(os.Stderr, "--- %s stderr:\n%s", name, b)
	}
}

func helperEngine(hc helperConfig, emit func(helperLine), fail func(error) int) int {
	c, diags := conf.Parse("helper.conf", hc.ConfText, conf.Options{})
	if conf.MaxLevel(diags) >= conf.Error {
		return fail(fmt.Errorf("config: %v", diags))
	}
	e, _, err := NewEngine(c, EngineOptions{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Sink: SinkFunc(func(n Notification) {
			if n.Instance != "" {
				emit(helperLine{Event: "transition", From: n.From.String(), To: n.To.String(), Priority: n.Priority})
			}
		}),
	})
	if err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	emit(helperLine{Event: "ready"})
	// A status line (state and counters of the first instance) every 250ms.
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			st := e.Status()
			if len(st) == 0 {
				continue
			}
			s := st[0].Stats
			m := map[string]uint64{
				"state": uint64(st[0].State), "priority": uint64(st[0].Priority),
				"advert_rcvd": s.AdvertRcvd.Load(), "advert_sent": s.AdvertSent.Load(),
				"become_master": s.BecomeMaster.Load(), "release_master": s.ReleaseMaster.Load(),
			}
			for _, r := range advert.DropReasons() {
				m["drop_"+r.String()] = s.Drops[r].Load()
			}
			emit(helperLine{Event: "status", Stats: m})
		}
	}()
	if err := e.Run(ctx); err != nil {
		return fail(err)
	}
	emit(helperLine{Event: "stats"})
	return 0
}
