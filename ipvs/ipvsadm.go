package ipvs

// ipvsadm's listings of the kernel's table, printed from what the netlink
// Reader lists: `ipvsadm -L -n` with its format options (--stats, --rate,
// --exact, --thresholds, --persistent-conn, --tun-info, --nosort), one
// service (-t, -u, --sctp-service, -f), the connections (-c, from
// /proc/net/ip_vs_conn) and the rules of `ipvsadm -S -n`. The output is the
// one ipvsadm 1.31 prints for the same table, byte for byte (checked against
// the real ipvsadm in the lab VM, see integration/ipvs_ctl_invm_test.go);
// the widths, the sorting (with the wrap-around of its comparisons) and the
// few quirks are ipvsadm's. Addresses are always numeric.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Info is what IPVS_CMD_GET_INFO returns.
type Info struct {
	Version uint32 // major<<16 | minor<<8 | patch
	Size    uint32 // connection hash table size
}

// InfoReader is a Reader that also reads Info (NewKernel's does).
type InfoReader interface {
	Reader
	Info() (Info, error)
}

// ListFormat selects one of ipvsadm's listings.
type ListFormat struct {
	Stats, Rate, Thresholds, PersistentConn, TunInfo bool
	Exact                                            bool // --exact: numbers in full (with --stats and --rate)
	NoSort                                           bool // --nosort: the kernel's order
	Rules                                            bool // -S: the commands that rebuild the table
	// Connections: -c, the connection table (ConnTable) instead of the
	// services.
	Connections bool
	// Service: -t/-u/--sctp-service/-f, one service only (no version line).
	Service *ServiceKey
}

// ListedService is a service with its destinations, as listed.
type ListedService struct {
	ServiceInfo
	Dests []DestInfo
}

// ErrNoService is the answer to a listing of a service the table lacks.
var ErrNoService = errors.New("No such service") //nolint:staticcheck // ipvsadm's words

// ReadListing reads what a listing of f needs: every service (or
// f.Service only) with its destinations.
func ReadListing(r Reader, f ListFormat) ([]ListedService, error) {
	svcs, err := r.Services()
	if err != nil {
		return nil, err
	}
	var out []ListedService
	for _, s := range svcs {
		if f.Service != nil && !sameListKey(s.ServiceKey, *f.Service) {
			continue
		}
		d, err := r.Destinations(s.ServiceKey)
		if err != nil {
			return nil, err
		}
		out = append(out, ListedService{ServiceInfo: s, Dests: d})
	}
	if f.Service != nil && len(out) == 0 {
		return nil, ErrNoService
	}
	return out, nil
}

func sameListKey(a, b ServiceKey) bool {
	if a.Fwmark != 0 || b.Fwmark != 0 {
		return a.Fwmark == b.Fwmark && a.Family == b.Family
	}
	return a.Proto == b.Proto && a.Addr == b.Addr && a.Port == b.Port
}

// WriteListing prints svcs as ipvsadm prints them with f (not
// f.Connections: see WriteConnections). info is used for the first line of
// a full listing.
func WriteListing(w io.Writer, info Info, svcs []ListedService, f ListFormat) error {
	bw := bufio.NewWriter(w)
	if f.Service == nil && !f.Rules {
		fmt.Fprintf(bw, "IP Virtual Server version %d.%d.%d (size=%d)\n", info.Version>>16&0xff, info.Version>>8&0xff, info.Version&0xff, info.Size)
	}
	if !f.NoSort {
		svcs = mergeSort(svcs, cmpListedServices)
	}
	writeTitle(bw, f)
	for _, s := range svcs {
		writeService(bw, s, f)
	}
	return bw.Flush()
}

func writeTitle(w *bufio.Writer, f ListFormat) {
	const local, remote = "Prot LocalAddress:Port", "  -> RemoteAddress:Port\n"
	switch {
	case f.Stats:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n%s", local, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes", remote)
	case f.Rate:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n%s", local, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS", remote)
	case f.Thresholds:
		fmt.Fprintf(w, "%-33s %-10s %-10s %-10s %-10s\n%s", local, "Uthreshold", "Lthreshold", "ActiveConn", "InActConn", remote)
	case f.PersistentConn:
		fmt.Fprintf(w, "%-33s %-9s %-11s %-10s %-10s\n%s", local, "Weight", "PersistConn", "ActiveConn", "InActConn", remote)
	case f.TunInfo:
		w.WriteString("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	case !f.Rules:
		w.WriteString("Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// numericAddrPort is ipvsadm's numeric address:port: IPv6 in brackets.
func numericAddrPort(a netip.Addr, port uint16) string {
	if a.Is4() {
		return a.String() + ":" + strconv.Itoa(int(port))
	}
	return "[" + a.String() + "]:" + strconv.Itoa(int(port))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

var (
	protoNames  = map[Protocol]string{TCP: "TCP", UDP: "UDP", SCTP: "SCTP"}
	protoOption = map[Protocol]string{TCP: "-t", UDP: "-u", SCTP: "--sctp-service"}
	fwdNames    = map[Forward]string{Masq: "Masq", Local: "Local", Tunnel: "Tunnel", Route: "Route"}
	fwdSwitches = map[Forward]string{Masq: "-m", Tunnel: "-i", Local: "-g", Route: "-g"}
	tunFlagInfo = map[TunnelFlags]string{TunNoCsum: "-c", TunCsum: "+c", TunRemCsum: "r+c"}
	tunFlagOpts = map[TunnelFlags]string{TunNoCsum: "--tun-nocsum", TunCsum: "--tun-csum", TunRemCsum: "--tun-remcsum"}
)

// orNull is what printf("%s", NULL) prints with glibc.
func orNull(m map[Forward]string, f Forward) string {
	if s, ok := m[f]; ok {
		return s
	}
	return "(null)"
}

// schedFlagNames are the scheduler flags by the scheduler's names for them.
func schedFlagNames(s Service) string {
	var names []string
	switch s.Scheduler {
	case "sh", "mh":
		if s.Flags&FlagSched1 != 0 {
			names = append(names, s.Scheduler+"-fallback")
		}
		if s.Flags&FlagSched2 != 0 {
			names = append(names, s.Scheduler+"-port")
		}
	default:
		for i, f := range []Flags{FlagSched1, FlagSched2, FlagSched3} {
			if s.Flags&f != 0 {
				names = append(names, "flag-"+strconv.Itoa(i+1))
			}
		}
	}
	return strings.Join(names, ",")
}

func writeService(w *bufio.Writer, s ListedService, f ListFormat) {
	var name string
	switch {
	case s.Fwmark != 0:
		// ipvsadm prints the mark as a signed number.
		mark := strconv.Itoa(int(int32(s.Fwmark)))
		switch {
		case f.Rules && s.Family == INET6:
			name = "-f " + mark + " -6"
		case f.Rules:
			name = "-f " + mark
		case s.Family == INET6:
			name = "FWM  " + mark + " IPv6"
		default:
			name = "FWM  " + mark
		}
	case f.Rules:
		opt, ok := protoOption[s.Proto]
		if !ok {
			opt = "--xxx-service"
		}
		name = opt + " " + numericAddrPort(s.Addr, s.Port)
	default:
		proto, ok := protoNames[s.Proto]
		if !ok {
			proto = "(null)"
		}
		name = fmt.Sprintf("%-4s %s", proto, numericAddrPort(s.Addr, s.Port))
		if s.Family != INET6 {
			name = truncate(name, 33)
		}
	}
	sched := s.Flags & (FlagSched1 | FlagSched2 | FlagSched3)
	switch {
	case f.Rules:
		fmt.Fprintf(w, "-A %s -s %s", name, s.Scheduler)
		writePersistence(w, s.Service, " -p ", " -M ", " --pe ")
		if s.Flags&FlagOnePacket != 0 {
			w.WriteString(" -o")
		}
		if sched != 0 {
			w.WriteString(" -b " + schedFlagNames(s.Service))
		}
	case f.Stats:
		fmt.Fprintf(w, "%-33s", name)
		st := s.Stats
		for _, v := range []uint64{st.Connections, st.PacketsIn, st.PacketsOut, st.BytesIn, st.BytesOut} {
			writeLargeNum(w, v, f.Exact)
		}
	case f.Rate:
		fmt.Fprintf(w, "%-33s", name)
		st := s.Stats
		for _, v := range []uint64{st.CPS, st.PPSIn, st.PPSOut, st.BPSIn, st.BPSOut} {
			writeLargeNum(w, v, f.Exact)
		}
	default:
		fmt.Fprintf(w, "%s %s", name, s.Scheduler)
		if sched != 0 {
			w.WriteString(" (" + schedFlagNames(s.Service) + ")")
		}
		writePersistence(w, s.Service, " persistent ", " mask ", " pe ")
		if s.Flags&FlagOnePacket != 0 {
			w.WriteString(" ops")
		}
	}
	w.WriteByte('\n')

	dests := s.Dests
	if !f.NoSort {
		dests = mergeSort(dests, cmpDests)
	}
	for _, d := range dests {
		dname := numericAddrPort(d.Addr, d.Port)
		if !f.Rules && d.Addr.Is4() {
			dname = truncate(dname, 28)
		}
		switch {
		case f.Rules:
			writeDestRule(w, name, dname, d)
		case f.Stats:
			fmt.Fprintf(w, "  -> %-28s", dname)
			st := d.Stats
			for _, v := range []uint64{st.Connections, st.PacketsIn, st.PacketsOut, st.BytesIn, st.BytesOut} {
				writeLargeNum(w, v, f.Exact)
			}
			w.WriteByte('\n')
		case f.Rate:
			// The connection and packet rates are never abbreviated.
			fmt.Fprintf(w, "  -> %-28s %8d %8d %8d", dname, d.Stats.CPS, d.Stats.PPSIn, d.Stats.PPSOut)
			writeLargeNum(w, d.Stats.BPSIn, f.Exact)
			writeLargeNum(w, d.Stats.BPSOut, f.Exact)
			w.WriteByte('\n')
		case f.Thresholds:
			fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname, d.UThreshold, d.LThreshold, d.ActiveConns, d.InactiveConns)
		case f.PersistentConn:
			fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname, uint32(int32(d.Weight)), d.PersistConns, d.ActiveConns, d.InactiveConns)
		case f.TunInfo:
			fmt.Fprintf(w, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname, orNull(fwdNames, d.Fwd), tunnelColumn(d.Destination), d.Weight, d.ActiveConns, d.InactiveConns)
		default:
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname, orNull(fwdNames, d.Fwd), d.Weight, d.ActiveConns, d.InactiveConns)
		}
	}
}

// writeMask prints the persistence netmask unless it is the default
// (/32, /128).
// writePersistence writes the persistence of a persistent service: its
// timeout, mask and persistence engine, each after its word (-S's options
// or the listing's).
func writePersistence(w *bufio.Writer, s Service, timeout, mask, pe string) {
	if s.Flags&FlagPersistent == 0 {
		return
	}
	w.WriteString(timeout + strconv.FormatUint(uint64(s.Timeout), 10))
	writeMask(w, s, mask)
	if s.PEName != "" {
		w.WriteString(pe + s.PEName)
	}
}

func writeMask(w *bufio.Writer, s Service, prefix string) {
	if s.Family == INET6 {
		if s.Netmask != 128 {
			w.WriteString(prefix + strconv.Itoa(int(int32(s.Netmask))))
		}
		return
	}
	if s.Netmask != 0xffffffff {
		w.WriteString(prefix + maskString(s.Netmask))
	}
}

// tunnelColumn is the TunnelInfo column: "ipip", "gue:PORT:FLAGS", "gre:FLAGS",
// "n/a" when not tunnelled (at most 15 characters, as ipvsadm's buffer).
func tunnelColumn(d Destination) string {
	if d.Fwd != Tunnel {
		return "n/a"
	}
	var s string
	switch d.TunType {
	case TunIPIP:
		s = "ipip"
	case TunGUE:
		s = fmt.Sprintf("gue:%d:%s", d.TunPort, tunFlagInfo[d.TunFlags])
	case TunGRE:
		s = "gre:" + tunFlagInfo[d.TunFlags]
	default:
		return "n/a"
	}
	return truncate(s, 15)
}

func writeDestRule(w *bufio.Writer, svc, dname string, d DestInfo) {
	fmt.Fprintf(w, "-a %s -r %s %s -w %d", svc, dname, orNull(fwdSwitches, d.Fwd), d.Weight)
	if d.Fwd == Tunnel {
		switch d.TunType {
		case TunGRE:
			fmt.Fprintf(w, " --tun-type gre %s", tunFlagOpts[d.TunFlags])
		case TunGUE:
			fmt.Fprintf(w, " --tun-type gue --tun-port %d %s", d.TunPort, tunFlagOpts[d.TunFlags])
		case TunIPIP:
			w.WriteString(" --tun-type ipip")
		}
	}
	w.WriteByte('\n')
}

// writeLargeNum is ipvsadm's print_largenum: 9 columns, abbreviated with
// K, M, G, T past 8 digits unless exact.
func writeLargeNum(w *bufio.Writer, i uint64, exact bool) {
	if exact {
		s := strconv.FormatUint(i, 10)
		width := 9
		if len(s) > 8 {
			width = len(s) + 1
		}
		fmt.Fprintf(w, "%*s", width, s)
		return
	}
	switch {
	case i < 100000000:
		fmt.Fprintf(w, "%9d", i)
	case i < 1000000000:
		fmt.Fprintf(w, "%8dK", i/1000)
	case i < 100000000000:
		fmt.Fprintf(w, "%8dM", i/1000000)
	case i < 100000000000000:
		fmt.Fprintf(w, "%8dG", i/1000000000)
	default:
		fmt.Fprintf(w, "%8dT", i/1000000000000)
	}
}

// addrWords is an address as the four 32-bit words of the kernel's union
// nf_inet_addr, in host order (an IPv4 address in the first).
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return w
	}
	b := a.As16()
	for i := range w {
		w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
	}
	return w
}

// diff32 is libipvs's "a - b" of two unsigned 32-bit values read as an int.
func diff32(a, b uint32) int { return int(int32(a - b)) }

// cmpAddrs compares as libipvs does: the words of an IPv6 address (v6) or
// the first word, each difference wrapping around.
func cmpAddrs(v6 bool, a, b netip.Addr) int {
	wa, wb := addrWords(a), addrWords(b)
	if !v6 {
		return diff32(wa[0], wb[0])
	}
	r := 0
	for i := 0; r == 0 && i < 4; i++ {
		r = diff32(wa[i], wb[i])
	}
	return r
}

// cmpListedServices is libipvs's ipvs_cmp_services.
func cmpListedServices(a, b ListedService) int {
	if r := diff32(a.Fwmark, b.Fwmark); r != 0 {
		return r
	}
	if r := int(a.Family) - int(b.Family); r != 0 {
		return r
	}
	if r := int(a.Proto) - int(b.Proto); r != 0 {
		return r
	}
	if r := cmpAddrs(a.Family == INET6, a.Addr, b.Addr); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// cmpDests is libipvs's ipvs_cmp_dests (the first one's family decides).
func cmpDests(a, b DestInfo) int {
	if r := cmpAddrs(!a.Addr.Is4(), a.Addr, b.Addr); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// mergeSort sorts a copy of s the way glibc's qsort does (a top-down merge
// sort), so that even ipvsadm's wrapping comparisons give its order.
func mergeSort[T any](s []T, cmp func(a, b T) int) []T {
	out := append([]T(nil), s...)
	tmp := make([]T, len(s))
	var sortRange func(b []T)
	sortRange = func(b []T) {
		n := len(b)
		if n <= 1 {
			return
		}
		n1 := n / 2
		b1, b2 := b[:n1], b[n1:]
		sortRange(b1)
		sortRange(b2)
		t := tmp[:0]
		i, j := 0, 0
		for i < len(b1) && j < len(b2) {
			if cmp(b1[i], b2[j]) <= 0 {
				t = append(t, b1[i])
				i++
			} else {
				t = append(t, b2[j])
				j++
			}
		}
		t = append(t, b1[i:]...)
		copy(b, t) // the rest of b2 is in place
	}
	sortRange(out)
	return out
}

// ConnProcFile is the kernel's connection table, which ipvsadm -c reads.
const ConnProcFile = "/proc/net/ip_vs_conn"

// WriteConnections prints the connection table proc (the text of
// ConnProcFile) as `ipvsadm -L -n -c` does (with f.PersistentConn, the
// persistence engine columns).
func WriteConnections(w io.Writer, proc io.Reader, f ListFormat) error {
	bw := bufio.NewWriter(w)
	sc := bufio.NewScanner(proc)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return err
		}
		return fmt.Errorf("unexpected input from %s", ConnProcFile)
	}
	bw.WriteString("IPVS connection entries\n")
	if f.PersistentConn {
		fmt.Fprintf(bw, "pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source", "virtual", "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(bw, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	}
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 9 {
			continue // not a connection line
		}
		c4, c6 := procAddr(fl[1])
		v := fl[3]
		d4, d6 := procAddr(fl[5])
		af6 := c6.IsValid()
		caddr, vaddr := c4, procHex(v)
		if af6 {
			caddr, vaddr = c6, procV6(v)
		}
		daddr := d4
		if d6.IsValid() {
			daddr = d6
		}
		cport, vport, dport := procPort(fl[2]), procPort(fl[4]), procPort(fl[6])
		expires, _ := strconv.ParseInt(fl[8], 10, 32)
		exp := fmt.Sprintf("%02d:%02d", expires/60, expires%60)
		cname, vname, dname := numericAddrPort(caddr, cport), numericAddrPort(vaddr, vport), numericAddrPort(daddr, dport)
		if f.PersistentConn && len(fl) >= 11 {
			fmt.Fprintf(bw, "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n", fl[0], exp, fl[7], cname, vname, dname, fl[9], fl[10])
		} else {
			fmt.Fprintf(bw, "%-3s %-6s %-11s %-18s %-18s %s\n", fl[0], exp, fl[7], cname, vname, dname)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return bw.Flush()
}

// procAddr reads an address of the proc file: IPv6 in text (second
// result), IPv4 in text or, as the kernel writes it, in hexadecimal.
func procAddr(s string) (v4, v6 netip.Addr) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is6() {
			return netip.Addr{}, a
		}
		return a, netip.Addr{}
	}
	return procHex(s), netip.Addr{}
}

func procHex(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return a
	}
	n, _ := strconv.ParseUint(s, 16, 32)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

func procV6(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return a
	}
	return netip.IPv6Unspecified()
}

func procPort(s string) uint16 {
	n, _ := strconv.ParseUint(s, 16, 16)
	return uint16(n)
}

// ParseListArgs reads ipvsadm's listing options: -L/--list (implied),
// -n/--numeric (addresses are always numeric), -c/--connection, --stats,
// --rate, --exact, --thresholds, --persistent-conn, --tun-info, --nosort,
// --sort, -S/--save, -t/--tcp-service, -u/--udp-service, --sctp-service,
// -f/--fwmark-service with -6. Short options may be grouped (-Ln).
func ParseListArgs(args []string) (ListFormat, error) {
	var f ListFormat
	var svc, kind string
	v6 := false
	take := func(i *int, a string) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("option %s requires an argument", a)
		}
		*i++
		return args[*i], nil
	}
	// The long options that only set a flag (nil: accepted, no effect).
	flags := map[string]*bool{
		"--list": nil, "--numeric": nil, "--sort": nil,
		"--connection": &f.Connections, "--stats": &f.Stats, "--rate": &f.Rate,
		"--exact": &f.Exact, "--thresholds": &f.Thresholds,
		"--persistent-conn": &f.PersistentConn, "--tun-info": &f.TunInfo,
		"--nosort": &f.NoSort, "--save": &f.Rules,
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "--") {
			name, val, hasVal := strings.Cut(a, "=")
			if b, ok := flags[name]; ok {
				if b != nil {
					*b = true
				}
				continue
			}
			switch name {
			case "--tcp-service", "--udp-service", "--sctp-service", "--fwmark-service":
				if !hasVal {
					v, err := take(&i, name)
					if err != nil {
						return f, err
					}
					val = v
				}
				kind, svc = name, val
			case "--ipv6":
				v6 = true
			default:
				return f, fmt.Errorf("unknown or unsupported option %s", a)
			}
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			return f, fmt.Errorf("unexpected argument %q", a)
		}
		for j := 1; j < len(a); j++ {
			switch c := a[j]; c {
			case 'L', 'l', 'n':
			case 'c':
				f.Connections = true
			case 'S':
				f.Rules = true
			case '6':
				v6 = true
			case 't', 'u', 'f':
				val := a[j+1:]
				if val == "" {
					v, err := take(&i, "-"+string(c))
					if err != nil {
						return f, err
					}
					val = v
				}
				kind = map[byte]string{'t': "--tcp-service", 'u': "--udp-service", 'f': "--fwmark-service"}[c]
				svc = val
				j = len(a)
			default:
				return f, fmt.Errorf("unknown or unsupported option -%c", c)
			}
		}
	}
	// ipvsadm's rules for these commands: -S takes -n only; -c and one
	// service exclude each other.
	if f.Rules && (kind != "" || f.Connections || f.Stats || f.Rate || f.Thresholds || f.PersistentConn || f.TunInfo || f.Exact || f.NoSort) {
		return f, errors.New("-S takes no option but -n")
	}
	if f.Connections && kind != "" {
		return f, errors.New("-c lists every connection: it takes no service")
	}
	if kind != "" {
		k, err := parseListService(kind, svc, v6)
		if err != nil {
			return f, err
		}
		f.Service = &k
	}
	return f, nil
}

func parseListService(kind, s string, v6 bool) (ServiceKey, error) {
	if kind == "--fwmark-service" {
		m, err := strconv.ParseUint(s, 10, 32)
		if err != nil || m == 0 {
			return ServiceKey{}, fmt.Errorf("invalid firewall mark %q", s)
		}
		k := ServiceKey{Family: INET, Fwmark: uint32(m)}
		if v6 {
			k.Family = INET6
		}
		return k, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ServiceKey{}, fmt.Errorf("invalid service address %q (ADDR:PORT, [ADDR6]:PORT)", s)
	}
	p := map[string]Protocol{"--tcp-service": TCP, "--udp-service": UDP, "--sctp-service": SCTP}[kind]
	a := ap.Addr().Unmap()
	return ServiceKey{Family: FamilyOf(a), Proto: p, Addr: a, Port: ap.Port()}, nil
}

// Listing is what `ipvsadm ARGS` prints for ipvsadm's listing options
// (ParseListArgs): the table read through r, the connections (-c) from
// ConnProcFile.
func Listing(r InfoReader, args []string) (string, error) {
	f, err := ParseListArgs(args)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if f.Connections {
		proc, err := os.Open(ConnProcFile)
		if err != nil {
			return "", err
		}
		defer proc.Close()
		err = WriteConnections(&b, proc, f)
		return b.String(), err
	}
	svcs, err := ReadListing(r, f)
	if err != nil {
		return "", err
	}
	var info Info
	if f.Service == nil && !f.Rules {
		if info, err = r.Info(); err != nil {
			return "", err
		}
	}
	err = WriteListing(&b, info, svcs, f)
	return b.String(), err
}
