package notify

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lvsd/lvsd/conf"
)

// VSAlerts reports whether smtp_alert is on for a virtual server (its
// quorum changes, and the default of its real servers): the virtual
// server's smtp_alert, else global smtp_alert_checker, else global
// smtp_alert, else off (keepalived's chain).
func VSAlerts(g *conf.Global, vs *conf.VirtualServer) bool {
	for _, b := range []*bool{vs.SMTPAlert, g.SMTPAlertChecker, g.SMTPAlert} {
		if b != nil {
			return *b
		}
	}
	return false
}

// RSAlerts reports whether smtp_alert is on for a real server's checkers:
// its own smtp_alert, else its virtual server's chain.
func RSAlerts(g *conf.Global, vs *conf.VirtualServer, rs *conf.RealServer) bool {
	if rs.SMTPAlert != nil {
		return *rs.SMTPAlert
	}
	return VSAlerts(g, vs)
}

// FormatVS names a virtual server as keepalived's alerts do:
// "[192.0.2.1]:tcp:80", "FWM 7" or "[group]:0".
func FormatVS(vs *conf.VirtualServer) string {
	switch vs.Kind {
	case conf.VSByFwmark:
		return fmt.Sprintf("FWM %d", vs.Fwmark)
	case conf.VSByGroup:
		return fmt.Sprintf("[%s]:%d", vs.Group, vs.Port)
	}
	return trio(vs.Addr, vs.Protocol, vs.Port)
}

// FormatRS names a real server of vs as keepalived's alerts do:
// "[10.0.0.1]:tcp:80".
func FormatRS(vs *conf.VirtualServer, rs *conf.RealServer) string {
	proto := vs.Protocol
	if vs.Kind == conf.VSByFwmark && proto == "" {
		proto = "tcp"
	}
	return trio(rs.Addr, proto, rs.Port)
}

func trio(a netip.Addr, proto string, port int) string {
	if proto == "" {
		proto = "tcp"
	}
	return fmt.Sprintf("[%s]:%s:%d", a.Unmap(), strings.ToLower(proto), port)
}

// RealServerSubject is the subject of a checker's alert (after the
// "[router_id] " prefix): the real server's state after the change.
func RealServerSubject(vs *conf.VirtualServer, rs *conf.RealServer, up bool) string {
	return "Realserver " + FormatRS(vs, rs) + " of virtual server " + FormatVS(vs) + " - " + upDown(up)
}

// QuorumMessage is the subject and body of a virtual server's quorum change.
// sum is the weight of its healthy real servers; init marks the state
// found at start-up or reload.
func QuorumMessage(vs *conf.VirtualServer, up, init bool, sum int) (subject, body string) {
	what, state, threshold := "Lost quorum", "DOWN", vs.Quorum-vs.Hysteresis
	switch {
	case up && init:
		what, state, threshold = "Starting with quorum up", "UP", vs.Quorum+vs.Hysteresis
	case up:
		what, state, threshold = "Gained quorum", "UP", vs.Quorum+vs.Hysteresis
	case init:
		what = "Starting with quorum down"
	}
	return "Virtualserver " + FormatVS(vs) + " - " + state,
		fmt.Sprintf("=> %s %d+%d=%d <= %d <=", what, vs.Quorum, vs.Hysteresis, threshold, sum)
}

// Alert queues an e-mail with the current global settings: the subject
// gets the "[router_id] " prefix. Nothing is sent without smtp_server or
// notification_email. It never blocks.
func (n *Notifier) Alert(subject, body string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.global.SMTPServer == "" || len(n.global.NotificationEmail) == 0 {
		return
	}
	if n.global.RouterID != "" {
		subject = "[" + n.global.RouterID + "] " + subject
	}
	n.enqueueMail(newMail(&n.global, subject, body, n.opts.Now()))
}

// RealServerAlert mails a checker's transition when smtp_alert is on for
// its real server and, with no_checker_emails, only when the real server
// changed state with it. up is the real server's state after the change.
func (n *Notifier) RealServerAlert(vs *conf.VirtualServer, rs *conf.RealServer, up, rsChanged bool, body string) {
	n.mu.Lock()
	on := RSAlerts(&n.global, vs, rs) && (rsChanged || !n.global.NoCheckerEmails)
	n.mu.Unlock()
	if on {
		n.Alert(RealServerSubject(vs, rs, up), body)
	}
}

// QuorumAlert mails a virtual server's quorum change when smtp_alert is on
// for it.
func (n *Notifier) QuorumAlert(vs *conf.VirtualServer, up, init bool, sum int) {
	n.mu.Lock()
	on := VSAlerts(&n.global, vs)
	n.mu.Unlock()
	if on {
		n.Alert(QuorumMessage(vs, up, init, sum))
	}
}

// CheckerBody is the body of a checker's alert, after keepalived's
// "=> TCP CHECK succeed on service <=".
func CheckerBody(checker string, up bool, reason string) string {
	if up {
		return "=> " + checker + " succeeded on service <="
	}
	if reason == "" {
		return "=> " + checker + " failed on service <="
	}
	return "=> " + checker + " failed on service: " + reason + " <="
}

// RealServerFIFO writes a real server's change of state to the FIFOs
// (keepalived's RS line).
func (n *Notifier) RealServerFIFO(vs *conf.VirtualServer, rs *conf.RealServer, up bool) {
	n.writeLVS(vs, rs, RSLine(vs, rs, up))
}

// QuorumFIFO writes a virtual server's quorum change to the FIFOs
// (keepalived's VS line).
func (n *Notifier) QuorumFIFO(vs *conf.VirtualServer, up bool) {
	n.writeLVS(vs, nil, VSLine(vs, up))
}

// heldLine is a checker's FIFO line of the start-up, held by HoldStart.
type heldLine struct {
	vs, kind, rs int // keepalived's order: the virtual server, its real servers (kind 0) then its quorum (1)
	line         string
}

// startHold holds the start-up lines and the configuration's order.
type startHold struct {
	vsIndex map[*conf.VirtualServer]int
	rsIndex map[*conf.RealServer]int
	lines   []heldLine
}

// HoldStart makes the checkers' FIFO lines wait for ReleaseStart. At
// start-up the virtual servers' quorum lines (the reconciler's) and the
// rs_init_notifies lines (the checkers') come from two goroutines;
// keepalived writes them virtual server by virtual server, in the
// configuration's order, each one's real servers and then its quorum.
func (n *Notifier) HoldStart(c *conf.Config) {
	h := &startHold{vsIndex: map[*conf.VirtualServer]int{}, rsIndex: map[*conf.RealServer]int{}}
	for i, vs := range c.VirtualServers {
		h.vsIndex[vs] = i
		for j, rs := range vs.RealServers {
			h.rsIndex[rs] = j
		}
	}
	n.mu.Lock()
	n.hold = h
	n.mu.Unlock()
}

// ReleaseStart writes the lines held since HoldStart in keepalived's
// order; the later ones are written as they come. Safe to call again.
func (n *Notifier) ReleaseStart() {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hold
	if h == nil {
		return
	}
	n.hold = nil
	slices.SortStableFunc(h.lines, func(a, b heldLine) int {
		return cmp.Or(cmp.Compare(a.vs, b.vs), cmp.Compare(a.kind, b.kind), cmp.Compare(a.rs, b.rs))
	})
	for _, l := range h.lines {
		n.opts.FIFO.WriteLVS(l.line)
	}
}

// writeLVS writes a checker's line, or holds it (HoldStart). Under n.mu:
// the held lines and the later ones keep their order.
func (n *Notifier) writeLVS(vs *conf.VirtualServer, rs *conf.RealServer, line string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hold
	if h == nil {
		n.opts.FIFO.WriteLVS(line)
		return
	}
	l := heldLine{vs: len(h.vsIndex), kind: 1, line: line}
	if i, ok := h.vsIndex[vs]; ok {
		l.vs = i
	}
	if rs != nil {
		l.kind, l.rs = 0, h.rsIndex[rs]
	}
	h.lines = append(h.lines, l)
}
