package healthcheck

import (
	"fmt"
	"net/netip"

	"github.com/lvsd/lvsd/conf"
)

// checkerKind is what the scheduler needs of a checker type besides the
// settings every checker has.
type checkerKind struct {
	// newProber builds the prober of a checker of this type; an error
	// leaves the checker down (see setTimers).
	newProber proberFunc
	// defaultRetry is retry when the checker sets none.
	defaultRetry int
	// name names a checker in logs and reasons; nil: its type and the
	// address it connects to.
	name func(c *conf.Checker) string
	// dynamic reports whether the checker's attempts set the real server's
	// weight (misc_dynamic); nil: never.
	dynamic func(c *conf.Checker) bool
}

// proberFunc builds the prober of a checker.
type proberFunc func(c *conf.Checker, rs *conf.RealServer, g *conf.Global) (prober, error)

// checkerKinds are the checker types lvsd runs, by their conf type: adding a
// checker is adding its entry. The other types are parsed but ignored (their
// real server counts them as up).
var checkerKinds = map[string]checkerKind{
	conf.CheckTCP: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return &tcpProbe{conn: newConnector(c, rs)}, nil
	}},
	conf.CheckHTTP: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newHTTPProbe(c, rs)
	}},
	conf.CheckSSL: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newHTTPProbe(c, rs)
	}},
	conf.CheckMisc: {defaultRetry: 0, name: miscName, dynamic: func(c *conf.Checker) bool { return c.MiscDynamic },
		newProber: func(c *conf.Checker, _ *conf.RealServer, g *conf.Global) (prober, error) {
			return newMiscProbe(c, g)
		}},
	conf.CheckExpect: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newExpectProbe(c, rs)
	}},
	conf.CheckSMTP: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newSMTPProbe(c, rs), nil
	}},
	conf.CheckDNS: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newDNSProbe(c, rs)
	}},
	conf.CheckUDP: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newUDPProbe(c, rs)
	}},
	conf.CheckFile: {defaultRetry: 0, name: func(c *conf.Checker) string { return c.Type + " " + c.FilePath },
		dynamic: func(c *conf.Checker) bool { return c.FileWeight != 0 },
		newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
			return newFileProbe(c, rs), nil
		}},
	conf.CheckPing: {defaultRetry: 1, newProber: func(c *conf.Checker, rs *conf.RealServer, _ *conf.Global) (prober, error) {
		return newPingProbe(c, rs), nil
	}},
}

// supported reports whether lvsd runs checkers of type t.
func supported(t string) bool {
	_, ok := checkerKinds[t]
	return ok
}

// newProber builds the prober of a checker of a supported type.
func newProber(c *conf.Checker, rs *conf.RealServer, g *conf.Global) (prober, error) {
	k, ok := checkerKinds[c.Type]
	if !ok {
		return nil, fmt.Errorf("%s is not supported", c.Type)
	}
	return k.newProber(c, rs, g)
}

// checkerName names a checker in logs and reasons.
func checkerName(c *conf.Checker, rs *conf.RealServer) string {
	if k := checkerKinds[c.Type]; k.name != nil {
		return k.name(c)
	}
	return fmt.Sprintf("%s %s", c.Type, netip.AddrPortFrom(connectIP(c, rs), uint16(c.ConnectPort)))
}

// miscName names a MISC_CHECK by its program.
func miscName(c *conf.Checker) string {
	if c.MiscPath != nil && len(c.MiscPath.Args) > 0 {
		return c.Type + " " + c.MiscPath.Args[0]
	}
	return c.Type
}

// connectIP is the address a checker connects to: connect_ip, else the real
// server's.
func connectIP(c *conf.Checker, rs *conf.RealServer) netip.Addr {
	if c.ConnectIP.IsValid() {
		return c.ConnectIP
	}
	return rs.Addr
}

// dynamic reports whether a checker's attempts set its real server's weight.
func dynamic(c *conf.Checker) bool {
	k := checkerKinds[c.Type]
	return k.dynamic != nil && k.dynamic(c)
}
