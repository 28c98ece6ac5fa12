package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lvsd/lvsd/conf"
	"github.com/lvsd/lvsd/notify"
	"github.com/lvsd/lvsd/vrrp"
	"github.com/lvsd/lvsd/vrrp/advert"
)

// JSONFile is the name of the JSON dump (keepalived's SIGJSON).
const JSONFile = "keepalived.json"

// gFloat is a number written as C's %g (keepalived's jsonw_float_field).
type gFloat float64

func (f gFloat) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(f), 'g', 6, 64), nil
}

// fFloat is a number written as C's %f (six decimals).
type fFloat float64

func (f fFloat) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(f), 'f', 6, 64), nil
}

// kaJSONData is the "data" object of one instance in keepalived 2.2.7's
// JSON dump, its fields in keepalived's order.
type kaJSONData struct {
	Iname                string   `json:"iname"`
	DontTrackPrimary     int      `json:"dont_track_primary"`
	SkipCheckAdvAddr     int      `json:"skip_check_adv_addr"`
	StrictMode           int      `json:"strict_mode"`
	VMACIfname           string   `json:"vmac_ifname"`
	IfpIfname            string   `json:"ifp_ifname,omitempty"`
	MasterPriority       int      `json:"master_priority"`
	LastTransition       fFloat   `json:"last_transition"`
	GARPDelay            gFloat   `json:"garp_delay"`
	GARPRefresh          int64    `json:"garp_refresh"`
	GARPRep              int      `json:"garp_rep"`
	GARPRefreshRep       int      `json:"garp_refresh_rep"`
	GARPLowerPrioDelay   int64    `json:"garp_lower_prio_delay"`
	GARPLowerPrioRep     int      `json:"garp_lower_prio_rep"`
	LowerPrioNoAdvert    int      `json:"lower_prio_no_advert"`
	HigherPrioSendAdvert int      `json:"higher_prio_send_advert"`
	VRID                 int      `json:"vrid"`
	BasePriority         int      `json:"base_priority"`
	EffectivePriority    int      `json:"effective_priority"`
	VIPSet               bool     `json:"vipset"`
	PromoteSecondaries   bool     `json:"promote_secondaries"`
	AdverInt             gFloat   `json:"adver_int"`
	MasterAdverInt       gFloat   `json:"master_adver_int"`
	Accept               int      `json:"accept"`
	Nopreempt            bool     `json:"nopreempt"`
	PreemptDelay         int64    `json:"preempt_delay"`
	State                int      `json:"state"`
	Wantstate            int      `json:"wantstate"`
	Version              int      `json:"version"`
	SMTPAlert            bool     `json:"smtp_alert"`
	NotifyDeleted        bool     `json:"notify_deleted"`
	ScriptBackup         string   `json:"script_backup,omitempty"`
	ScriptMaster         string   `json:"script_master,omitempty"`
	ScriptFault          string   `json:"script_fault,omitempty"`
	ScriptStop           string   `json:"script_stop,omitempty"`
	Script               string   `json:"script,omitempty"`
	ScriptRxLowerPri     string   `json:"script_master_rx_lower_pri,omitempty"`
	VIPs                 []string `json:"vips,omitempty"`
	EVIPs                []string `json:"evips,omitempty"`
	VRoutes              []string `json:"vroutes,omitempty"`
	VRules               []string `json:"vrules,omitempty"`
	TrackIfp             []string `json:"track_ifp,omitempty"`
	TrackScript          []string `json:"track_script,omitempty"`
	AuthType             int      `json:"auth_type"`
	AuthData             string   `json:"auth_data,omitempty"`
}

// kaJSONStats is the "stats" object of one instance.
type kaJSONStats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthtype   uint64 `json:"invalid_authtype"`
	AuthtypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
}

type kaJSONInstance struct {
	Data  kaJSONData  `json:"data"`
	Stats kaJSONStats `json:"stats"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cmdStr writes a script as keepalived's cmd_str does: each word in single
// quotes, the program by the path keepalived resolves it to (a bare name
// looked up in PATH; the directory's symbolic links resolved, the file's
// own name kept).
func cmdStr(s *conf.Script) string {
	if s == nil || len(s.Args) == 0 {
		return ""
	}
	words := append([]string(nil), s.Args...)
	prog := words[0]
	if !strings.Contains(prog, "/") {
		if p, err := exec.LookPath(prog); err == nil {
			prog = p
		}
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(prog)); err == nil {
		prog = filepath.Join(dir, filepath.Base(prog))
	}
	words[0] = prog
	for i, w := range words {
		words[i] = "'" + w + "'"
	}
	return strings.Join(words, " ")
}

// kaVIP writes an address as keepalived's format_ipaddress does.
func kaVIP(v conf.VIP, dev string, set bool) string {
	s := FormatVIP(v.Prefix)
	if v.Brd.IsValid() && v.Prefix.Addr().Is4() {
		s += " brd " + v.Brd.String()
	}
	if v.Dev != "" {
		dev = v.Dev
	}
	scope := v.Scope
	if scope == "" || v.Prefix.Addr().Is6() {
		scope = "global"
	}
	s += " dev " + dev + " scope " + scope
	if v.Label != "" && v.Prefix.Addr().Is4() {
		s += " label " + v.Label
	}
	if v.NoTrack {
		s += " no_track"
	}
	if set {
		s += " set"
	}
	return s
}

// kaPrefix writes a prefix as keepalived's ipaddresstos: a host without
// its length.
func kaPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// kaScopes are the route scopes keepalived writes as numbers.
var kaScopes = map[string]string{"global": "0", "site": "200", "link": "253", "host": "254", "nowhere": "255"}

// kaRoute writes a virtual route as keepalived 2.2.7's format_iproute
// does: "prepend" (a unicast route) or "add TYPE", the gateway with its
// family, the scope as a number, keepalived's protocol unless no_track was
// given, and no_track also for a route without a device (keepalived does
// not track those).
func kaRoute(r *conf.VRoute) string {
	var b strings.Builder
	if r.Type == "" {
		b.WriteString("prepend ")
	} else {
		b.WriteString("add " + r.Type + " ")
	}
	b.WriteString(kaPrefix(r.Dst))
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	if r.Via.IsValid() {
		fam := "inet"
		if r.Via.Is6() {
			fam = "inet6"
		}
		b.WriteString(" via " + fam + " " + r.Via.String())
	}
	if r.Dev != "" {
		b.WriteString(" dev " + r.Dev)
	}
	if r.Table != 0 && r.Table != 254 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	switch {
	case !r.NoTrack:
		b.WriteString(" proto 18")
	case r.Proto != 0:
		fmt.Fprintf(&b, " proto %d", r.Proto)
	}
	if r.Scope != "" {
		sc, ok := kaScopes[r.Scope]
		if !ok {
			sc = r.Scope
		}
		b.WriteString(" scope " + sc)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.OnLink && r.Dst.Addr().Is4() {
		b.WriteString(" onlink")
	}
	if r.NoTrack || r.Dev == "" {
		b.WriteString(" no_track")
	}
	return b.String()
}

// kaRule writes a virtual rule as keepalived 2.2.7's format_iprule does:
// an address given as all/any/default is the family's whole range (keepalived
// parses it as an address), the tos always, the action last.
func kaRule(line conf.Route) string {
	r := line.Rule
	given := map[string]bool{}
	for i := 0; i+1 < len(line.Words); i++ {
		if w := line.Words[i]; w == "from" || w == "to" {
			switch line.Words[i+1] {
			case "all", "any", "default":
				given[w] = true
			}
		}
	}
	addr := func(p netip.Prefix, word string) string {
		switch {
		case p.IsValid():
			return kaPrefix(p)
		case !given[word]:
			return ""
		case r.IPv6:
			return "::/0"
		}
		return "0.0.0.0/0"
	}
	from, to := addr(r.From, "from"), addr(r.To, "to")
	var b strings.Builder
	if from == "" && to == "" && r.IPv6 {
		b.WriteString("inet6 ")
	}
	if r.Not {
		b.WriteString("not ")
	}
	if from == "" {
		from = "all"
	}
	b.WriteString("from " + from)
	if to != "" {
		b.WriteString(" to " + to)
	}
	fmt.Fprintf(&b, " priority %d tos 0x0", r.Priority)
	b.WriteString(r.MatchWords(true))
	if r.Proto != 0 {
		fmt.Fprintf(&b, " protocol %d", r.Proto)
	}
	switch r.Action {
	case "lookup":
		fmt.Fprintf(&b, " lookup %d", r.Table)
	case "goto":
		fmt.Fprintf(&b, " goto %d", r.Goto)
	case "nop":
		b.WriteString(" nop")
	default:
		b.WriteString(" type " + r.Action)
	}
	if r.NoTrack {
		b.WriteString(" no_track")
	}
	return b.String()
}

// WriteJSON writes the JSON dump of keepalived 2.2.7 (its SIGJSON, the
// file /tmp/keepalived.json): an array with, for each VRRP instance of cfg
// (the configuration VRRP runs), its "data" and "stats" as keepalived
// names and writes them. st gives the running state and counters.
func WriteJSON(w io.Writer, st *Status, cfg *conf.Config) error {
	out := []kaJSONInstance{}
	byName := map[string]*Instance{}
	for i := range st.Instances {
		byName[st.Instances[i].Name] = &st.Instances[i]
	}
	scripts := map[string]*conf.VRRPScript{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
	}
	g := &cfg.Global
	for _, in := range cfg.Instances {
		run := byName[in.Name]
		if run == nil {
			continue
		}
		d := kaJSONData{
			Iname: in.Name, DontTrackPrimary: b2i(in.DontTrackPrimary),
			SkipCheckAdvAddr: b2i(in.SkipCheckAdvAddr || g.VRRPSkipCheckAdvAddr), StrictMode: b2i(in.Strict || g.VRRPStrict),
			IfpIfname: in.Interface,
			GARPDelay: gFloat(in.GARP.MasterDelay.Seconds()), GARPRefresh: int64(in.GARP.MasterRefresh.Seconds()),
			GARPRep: in.GARP.MasterRepeat, GARPRefreshRep: in.GARP.MasterRefreshRepeat,
			GARPLowerPrioDelay: int64(in.GARP.LowerPrioDelay.Seconds()), GARPLowerPrioRep: in.GARP.LowerPrioRepeat,
			LowerPrioNoAdvert:    b2i(in.LowerPrioNoAdvert || g.VRRPLowerPrioNoAdvert),
			HigherPrioSendAdvert: b2i(in.HigherPrioSendAdvert || g.VRRPHigherPrioSendAdvert),
			VRID:                 in.VRID, BasePriority: in.Priority, EffectivePriority: run.Priority,
			VIPSet: run.VIPsSet, PromoteSecondaries: in.PromoteSecondaries,
			AdverInt: gFloat(in.AdvertInt.Seconds()), MasterAdverInt: gFloat(run.MasterAdverInt),
			Accept: b2i(in.Accept), Nopreempt: in.NoPreempt, PreemptDelay: int64(in.PreemptDelay.Seconds()),
			State: run.StateCode, Wantstate: run.StateCode, Version: in.Version,
			SMTPAlert:    notify.VRRPAlerts(in.SMTPAlert, g),
			ScriptBackup: cmdStr(in.Notify.Backup), ScriptMaster: cmdStr(in.Notify.Master),
			ScriptFault: cmdStr(in.Notify.Fault), ScriptStop: cmdStr(in.Notify.Stop), Script: cmdStr(in.Notify.Any),
			ScriptRxLowerPri: cmdStr(in.NotifyMasterRxLowerPri),
		}
		// The priority of the master heard; keepalived's is 0 while it is
		// the master itself.
		if run.StateCode != StateCode(vrrp.StateMaster) {
			d.MasterPriority = run.MasterPriority
		}
		if !run.LastTransition.IsZero() {
			d.LastTransition = fFloat(float64(run.LastTransition.UnixMicro()) / 1e6)
		}
		for _, v := range in.VIPs {
			d.VIPs = append(d.VIPs, kaVIP(v, in.Interface, run.VIPsSet))
		}
		for _, v := range in.ExcludedVIPs {
			d.EVIPs = append(d.EVIPs, kaVIP(v, in.Interface, run.VIPsSet))
		}
		for _, r := range in.Routes {
			if r.Parsed != nil {
				d.VRoutes = append(d.VRoutes, kaRoute(r.Parsed))
			}
		}
		for _, r := range in.Rules {
			if r.Rule != nil {
				d.VRules = append(d.VRules, kaRule(r))
			}
		}
		for _, ti := range in.TrackInterface {
			// keepalived does not list the instance's own interface: it
			// tracks it anyway.
			if ti.Name != in.Interface {
				d.TrackIfp = append(d.TrackIfp, ti.Name)
			}
		}
		for _, ts := range in.TrackScript {
			if s := scripts[ts.Name]; s != nil {
				d.TrackScript = append(d.TrackScript, cmdStr(&s.Script))
			}
		}
		switch in.Auth.Type {
		case "PASS":
			d.AuthType = 1
		case "AH":
			d.AuthType = 2
		}
		if d.AuthType != 0 {
			d.AuthData = in.Auth.Pass
			if len(d.AuthData) > 8 {
				d.AuthData = d.AuthData[:8]
			}
		}
		s := &run.Stats
		out = append(out, kaJSONInstance{Data: d, Stats: kaJSONStats{
			AdvertRcvd: s.AdvertRcvd, AdvertSent: s.AdvertSent, BecomeMaster: s.BecomeMaster, ReleaseMaster: s.ReleaseMaster,
			PacketLenErr: PacketLengthErrors(s), AdvertIntervalErr: s.Drop(advert.DropInterval),
			IPTTLErr: s.Drop(advert.DropTTL), InvalidTypeRcvd: s.Drop(advert.DropType), AddrListErr: s.AddrListErr,
			AuthtypeMismatch: s.Drop(advert.DropAuthType), AuthFailure: s.Drop(advert.DropAuthFailure),
			PriZeroRcvd: s.PriZeroRcvd, PriZeroSent: s.PriZeroSent,
		}})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// DumpJSON writes SIGJSON's dump (keepalived.json) into dir, as DumpData.
func DumpJSON(dir string, st *Status, cfg *conf.Config) (string, error) {
	p := filepath.Join(dir, JSONFile)
	return p, WriteDumpFile(p, func(w io.Writer) error { return WriteJSON(w, st, cfg) })
}
