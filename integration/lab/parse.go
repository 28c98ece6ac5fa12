package lab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// IPVSService is one virtual service of `ipvsadm -Ln`.
type IPVSService struct {
	Proto string // TCP, UDP, FWM
	Addr  string // 192.0.2.100:80
	Sched string // rr, wlc, ...
	Flags string // e.g. "persistent 50"
	Reals []IPVSReal
}

// IPVSReal is one real server line of `ipvsadm -Ln`.
type IPVSReal struct {
	Addr     string // 198.51.100.71:80
	Forward  string // Masq, Route, Tunnel, Local
	Weight   int
	Active   int
	Inactive int
}

// Real returns the real server with the address, or nil.
func (s *IPVSService) Real(addr string) *IPVSReal {
	for i := range s.Reals {
		if s.Reals[i].Addr == addr {
			return &s.Reals[i]
		}
	}
	return nil
}

// RealAddrs lists the real server addresses, sorted.
func (s *IPVSService) RealAddrs() []string {
	var a []string
	for _, r := range s.Reals {
		a = append(a, r.Addr)
	}
	sort.Strings(a)
	return a
}

// ParseIPVS parses `ipvsadm -Ln` output.
func ParseIPVS(text string) ([]IPVSService, error) {
	var svcs []IPVSService
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(l, "IP Virtual Server"), f[0] == "Prot", f[0] == "->" && f[1] == "RemoteAddress:Port":
		case f[0] == "->":
			if len(svcs) == 0 || len(f) < 6 {
				return nil, fmt.Errorf("ipvsadm: unexpected line %q", l)
			}
			r := IPVSReal{Addr: f[1], Forward: f[2]}
			var err1, err2, err3 error
			r.Weight, err1 = strconv.Atoi(f[3])
			r.Active, err2 = strconv.Atoi(f[4])
			r.Inactive, err3 = strconv.Atoi(f[5])
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, fmt.Errorf("ipvsadm: bad real server line %q", l)
			}
			s := &svcs[len(svcs)-1]
			s.Reals = append(s.Reals, r)
		case f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM" || f[0] == "SCTP":
			if len(f) < 3 {
				return nil, fmt.Errorf("ipvsadm: unexpected line %q", l)
			}
			svcs = append(svcs, IPVSService{Proto: f[0], Addr: f[1], Sched: f[2], Flags: strings.Join(f[3:], " ")})
		default:
			return nil, fmt.Errorf("ipvsadm: unexpected line %q", l)
		}
	}
	return svcs, sc.Err()
}

// FindService returns the service with protocol and address, or nil.
func FindService(svcs []IPVSService, proto, addr string) *IPVSService {
	for i := range svcs {
		if svcs[i].Proto == proto && svcs[i].Addr == addr {
			return &svcs[i]
		}
	}
	return nil
}

// ParseAddrs parses `ip -o addr show` output into interface -> addresses
// ("192.0.2.100/24"); IPv4 and IPv6.
func ParseAddrs(text string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || (f[2] != "inet" && f[2] != "inet6") {
			continue
		}
		ifname, _, _ := strings.Cut(f[1], "@")
		m[ifname] = append(m[ifname], f[3])
	}
	return m
}

// Namespaces lists the network namespaces a snapshot TAG recorded.
func (r *Result) Namespaces(tag string) []string {
	return strings.Fields(r.File(tag + "-namespaces.txt"))
}

// Holders lists the namespaces that had addr (without prefix length) on
// an interface in snapshot TAG.
func (r *Result) Holders(tag, addr string) []string {
	var h []string
	for _, ns := range r.Namespaces(tag) {
		for _, addrs := range ParseAddrs(r.File(tag + "-addr-" + ns + ".txt")) {
			for _, a := range addrs {
				if ip, _, _ := strings.Cut(a, "/"); ip == addr {
					h = append(h, ns)
				}
			}
		}
	}
	sort.Strings(h)
	return h
}

// IPVS parses the IPVS table of namespace ns in snapshot TAG.
func (r *Result) IPVS(tag, ns string) ([]IPVSService, error) {
	name := tag + "-ipvs-" + ns + ".txt"
	text, ok := r.Files[name]
	if !ok {
		return nil, fmt.Errorf("no %s in the results", name)
	}
	return ParseIPVS(string(text))
}

// Client parses /results/TAG-client.json (or TAG-loop.json with loop).
func (r *Result) Client(tag string) (ClientReport, error) {
	return r.report(tag + "-client.json")
}

// Loop parses /results/TAG-loop.json.
func (r *Result) Loop(tag string) (ClientReport, error) {
	return r.report(tag + "-loop.json")
}

func (r *Result) report(name string) (ClientReport, error) {
	var rep ClientReport
	b, ok := r.Files[name]
	if !ok {
		return rep, fmt.Errorf("no %s in the results", name)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("%s: %v: %q", name, err, b)
	}
	return rep, nil
}

// Waits parses /results/waits.txt: description -> seconds waited, or -1
// for a timeout.
func (r *Result) Waits() map[string]float64 {
	w := map[string]float64{}
	for _, l := range strings.Split(r.File("waits.txt"), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		desc := strings.Join(f[:len(f)-2], " ")
		if f[len(f)-2] == "ok" {
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			w[desc] = v
		} else {
			w[desc] = -1
		}
	}
	return w
}
