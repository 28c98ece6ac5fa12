package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/lvsd/lvsd/conf"
)

// opTimeout bounds one call into GoBGP.
const opTimeout = 10 * time.Second

// connectRetry is how often a neighbor that does not answer is tried
// again (GoBGP's default is 120 s: too slow for a router restarting).
const connectRetry = 5

// goBGP is the Speaker on GoBGP's server, used as a library: no gRPC API
// is opened. Its log goes to lvsd's at warning level and above.
type goBGP struct {
	log     *slog.Logger
	s       *server.BgpServer
	localAS uint32

	mu    sync.Mutex
	paths map[netip.Prefix]uuid.UUID
}

// NewGoBGP returns a Speaker on GoBGP.
func NewGoBGP(log *slog.Logger) Speaker {
	return &goBGP{log: log, paths: map[netip.Prefix]uuid.UUID{}}
}

func ctxOp() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

func (g *goBGP) Start(gl Global) error {
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	g.s = server.NewBgpServer(server.LoggerOption(g.log.With("lib", "gobgp"), lv))
	go g.s.Serve()
	g.localAS = gl.LocalAS
	port := int32(gl.ListenPort)
	if port == 0 {
		port = -1 // GoBGP: do not listen
	}
	ctx, cancel := ctxOp()
	defer cancel()
	if err := g.s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: gl.LocalAS, RouterId: gl.RouterID.String(), ListenPort: port,
	}}); err != nil {
		g.s.Stop()
		return err
	}
	// Only the routes lvsd originates enter the RIB: what the routers
	// send is not kept, and never passed on from one router to another.
	if err := g.s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: "lvsd-local-only", Statements: []*api.Statement{{
		Name:       "local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}}); err != nil {
		g.Stop()
		return fmt.Errorf("import policy: %w", err)
	}
	if err := g.s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: "lvsd-local-only"}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
	}}); err != nil {
		g.Stop()
		return fmt.Errorf("import policy: %w", err)
	}
	return nil
}

func (g *goBGP) Stop() error {
	if g.s == nil {
		return nil
	}
	ctx, cancel := ctxOp()
	defer cancel()
	err := g.s.StopBgp(ctx, &api.StopBgpRequest{})
	g.s.Stop()
	return err
}

func family(a netip.Addr) *api.Family {
	if a.Is4() {
		return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
}

// AddPeer adds n with the address family of its address (an IPv4
// neighbor gets the IPv4 routes, an IPv6 one the IPv6 routes).
func (g *goBGP) AddPeer(n conf.BGPNeighbor) error {
	hold := uint64(n.HoldTime / time.Second)
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Addr.String(), PeerAsn: n.RemoteAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: connectRetry,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: family(n.Addr), Enabled: true}}},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	ctx, cancel := ctxOp()
	defer cancel()
	return g.s.AddPeer(ctx, &api.AddPeerRequest{Peer: p})
}

func (g *goBGP) DeletePeer(addr netip.Addr) error {
	ctx, cancel := ctxOp()
	defer cancel()
	return g.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()})
}

// path makes r a GoBGP path: origin IGP, the next hop left to GoBGP (the
// session's local address), the local AS r.Prepend more times (GoBGP puts
// it once on every eBGP session), MED and communities.
func (g *goBGP) path(r Route) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	fam, nh := gbgp.RF_IPv4_UC, netip.IPv4Unspecified()
	if r.Prefix.Addr().Is6() {
		fam, nh = gbgp.RF_IPv6_UC, netip.IPv6Unspecified()
	}
	var nhAttr gbgp.PathAttributeInterface
	if fam == gbgp.RF_IPv4_UC {
		if nhAttr, err = gbgp.NewPathAttributeNextHop(nh); err != nil {
			return nil, err
		}
	} else if nhAttr, err = gbgp.NewPathAttributeMpReachNLRI(fam, []gbgp.PathNLRI{{NLRI: nlri}}, nh); err != nil {
		return nil, err
	}
	var asPath []gbgp.AsPathParamInterface
	if r.Prepend > 0 {
		asPath = []gbgp.AsPathParamInterface{gbgp.NewAs4PathParam(gbgp.BGP_ASPATH_ATTR_TYPE_SEQ, slices.Repeat([]uint32{g.localAS}, r.Prepend))}
	}
	attrs := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(0), nhAttr, gbgp.NewPathAttributeAsPath(asPath)}
	if r.HasMED {
		attrs = append(attrs, gbgp.NewPathAttributeMultiExitDisc(r.MED))
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeCommunities(r.Communities))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Age: time.Now().Unix()}, nil
}

func (g *goBGP) Announce(r Route) error {
	p, err := g.path(r)
	if err != nil {
		return err
	}
	resp, err := g.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
	if err != nil {
		return err
	}
	if len(resp) != 1 {
		return errors.New("path not added")
	}
	if resp[0].Error != nil {
		return resp[0].Error
	}
	g.mu.Lock()
	g.paths[r.Prefix] = resp[0].UUID
	g.mu.Unlock()
	return nil
}

func (g *goBGP) Withdraw(p netip.Prefix) error {
	g.mu.Lock()
	id, ok := g.paths[p]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	if err := g.s.DeletePath(apiutil.DeletePathRequest{UUIDs: []uuid.UUID{id}}); err != nil {
		return err
	}
	g.mu.Lock()
	delete(g.paths, p)
	g.mu.Unlock()
	return nil
}

func (g *goBGP) Peers() []PeerState {
	if g.s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []PeerState
	_ = g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		ps := PeerState{State: "unknown"}
		if p.Conf != nil {
			ps.Addr, _ = netip.ParseAddr(p.Conf.NeighborAddress)
			ps.RemoteAS = p.Conf.PeerAsn
		}
		if st := p.State; st != nil {
			ps.State = strings.ToLower(strings.TrimPrefix(st.SessionState.String(), "SESSION_STATE_"))
		}
		if t := p.Timers; t != nil && t.State != nil {
			if ps.Established() && t.State.Uptime != nil {
				ps.Since = t.State.Uptime.AsTime()
			}
			ps.HoldTime = time.Duration(t.State.NegotiatedHoldTime) * time.Second
		}
		out = append(out, ps)
	})
	slices.SortFunc(out, func(a, b PeerState) int { return a.Addr.Compare(b.Addr) })
	return out
}
