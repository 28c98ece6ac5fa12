package bgp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// router is a second GoBGP server on loopback standing for the router:
// lvsd's speaker (the real adapter) peers with it over TCP.
type router struct {
	s    *server.BgpServer
	port int
}

func freePort(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newRouter(t *testing.T) *router {
	t.Helper()
	r := &router{s: server.NewBgpServer(server.LoggerOption(slog.New(slog.NewTextHandler(io.Discard, nil)), new(slog.LevelVar))), port: freePort(t, "127.0.0.2")}
	go r.s.Serve()
	ctx := context.Background()
	if err := r.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: 65000, RouterId: "192.0.2.1",
		ListenPort: int32(r.port), ListenAddresses: []string{"127.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.s.StopBgp(context.Background(), &api.StopBgpRequest{}); r.s.Stop() })
	if err := r.s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
	}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// routes is the router's RIB: prefix → "as_path [..] med N communities [..]".
func (r *router) routes(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := r.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
		func(prefix gbgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				var as []uint32
				med, comms := "-", []string{}
				for _, a := range p.Attrs {
					switch a := a.(type) {
					case *gbgp.PathAttributeAsPath:
						for _, seg := range a.Value {
							as = append(as, seg.GetAS()...)
						}
					case *gbgp.PathAttributeMultiExitDisc:
						med = fmt.Sprint(a.Value)
					case *gbgp.PathAttributeCommunities:
						comms = communityStrings(a.Value)
					}
				}
				out[prefix.String()] = fmt.Sprintf("as_path %v med %s communities %v", as, med, comms)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (r *router) waitRoutes(t *testing.T, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := r.routes(t)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("router's routes:\n%v\nwant:\n%v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGoBGPSpeaker: lvsd's Service on the real GoBGP adapter, peering over
// loopback with a GoBGP router: the routes reach the router with their
// attributes (MED, communities, the AS path with the prepends), a quorum
// loss withdraws, a reload that leaves the neighbor as it was keeps the
// session (same establishment time), and the graceful shutdown puts
// GRACEFUL_SHUTDOWN on the routes before withdrawing them.
func TestGoBGPSpeaker(t *testing.T) {
	r := newRouter(t)
	text := strings.Replace(testConf, `  neighbor 192.0.2.1 {
    remote_as 65000
  }`, fmt.Sprintf(`  listen_port 0
  drain_time 1
  neighbor 127.0.0.2 {
    remote_as 65000
    port %d
    local_address 127.0.0.1
    hold_time 3
  }`, r.port), 1)
	text = strings.Replace(text, "drain_time 5\n", "", 1)
	svc := New(parse(t, text), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	established := func() PeerState {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if ps := svc.Status().Peers; len(ps) == 1 && ps[0].Established() {
				return ps[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("session not established: %+v", svc.Status().Peers)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	p := established()
	if p.Addr != netip.MustParseAddr("127.0.0.2") || p.RemoteAS != 65000 || p.HoldTime != 3*time.Second || p.Since.IsZero() {
		t.Fatalf("peer %+v", p)
	}
	svc.SetQuorum(allUp)
	svc.SetMaster("VI_1", true)
	r.waitRoutes(t, map[string]string{
		"203.0.113.10/32": "as_path [65001] med 10 communities [65001:100]",
		"203.0.113.20/32": "as_path [65001 65001 65001] med 10 communities [65001:100]",
	})
	svc.SetQuorum(with(allUp, "TCP/203.0.113.10:443", false))
	r.waitRoutes(t, map[string]string{"203.0.113.20/32": "as_path [65001 65001 65001] med 10 communities [65001:100]"})
	svc.SetQuorum(allUp)
	r.waitRoutes(t, map[string]string{
		"203.0.113.10/32": "as_path [65001] med 10 communities [65001:100]",
		"203.0.113.20/32": "as_path [65001 65001 65001] med 10 communities [65001:100]",
	})
	// A reload changing an announcement, not the neighbor.
	svc.Apply(parse(t, strings.Replace(text, "med 10\n", "med 11\n", 1)))
	r.waitRoutes(t, map[string]string{
		"203.0.113.10/32": "as_path [65001] med 11 communities [65001:100]",
		"203.0.113.20/32": "as_path [65001 65001 65001] med 11 communities [65001:100]",
	})
	if q := established(); !q.Since.Equal(p.Since) {
		t.Fatalf("the session was reset by a reload that did not change it: established %v, then %v", p.Since, q.Since)
	}
	// Graceful shutdown.
	shut := make(chan time.Duration, 1)
	t0 := time.Now()
	go func() { svc.Shutdown(context.Background()); shut <- time.Since(t0) }()
	r.waitRoutes(t, map[string]string{
		"203.0.113.10/32": "as_path [65001] med 11 communities [65001:100 65535:0]",
		"203.0.113.20/32": "as_path [65001 65001 65001] med 11 communities [65001:100 65535:0]",
	})
	r.waitRoutes(t, map[string]string{})
	if d := <-shut; d < time.Second {
		t.Fatalf("Shutdown returned after %v, before drain_time (1 s)", d)
	}
	if !slices.ContainsFunc(svc.Status().Peers, PeerState.Established) {
		t.Fatal("the session ended with the drain; it should last until Run ends")
	}
}
