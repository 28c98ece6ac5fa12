package ipvs

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// IPVS generic netlink constants missing from github.com/cloudflare/ipvs's
// public API (include/uapi/linux/ip_vs.h).
const (
	genlName    = "IPVS"
	genlVersion = 1

	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11
	cmdSetConfig = 12
	cmdGetConfig = 13
	cmdFlush     = 17

	cmdAttrDaemon        = 3
	cmdAttrTimeoutTCP    = 4
	cmdAttrTimeoutTCPFin = 5
	cmdAttrTimeoutUDP    = 6

	daemonAttrState       = 1
	daemonAttrMcastIfn    = 2
	daemonAttrSyncID      = 3
	daemonAttrSyncMaxlen  = 4
	daemonAttrMcastGroup  = 5
	daemonAttrMcastGroup6 = 6
	daemonAttrMcastPort   = 7
	daemonAttrMcastTTL    = 8
)

// netlinkKernel is the real Kernel: services and destinations through
// github.com/cloudflare/ipvs, the rest through our own generic netlink
// socket on the same "IPVS" family.
type netlinkKernel struct {
	c   cfipvs.Client
	g   *genetlink.Conn
	fam genetlink.Family
	b   *batcher // nil: one operation per round trip
	// procSysctls: the IPVS sysctls (sysctl.go), in this network namespace.
	procSysctls
	// pe: a service with a persistence engine was programmed (or seen):
	// Services reads the engines too, with a dump of its own.
	pe atomic.Bool
}

// NewKernel opens the kernel's IPVS interface. It fails when the kernel has
// no IPVS (the ip_vs module is not loaded and cannot be: run modprobe ip_vs).
func NewKernel() (Kernel, error) {
	c, err := cfipvs.New()
	if err != nil {
		return nil, fmt.Errorf("ipvs: opening the IPVS netlink family (is the ip_vs module loaded?): %w", err)
	}
	g, err := genetlink.Dial(nil)
	if err != nil {
		closeClient(c)
		return nil, fmt.Errorf("ipvs: generic netlink: %w", err)
	}
	fam, err := g.GetFamily(genlName)
	if err != nil {
		g.Close()
		closeClient(c)
		return nil, fmt.Errorf("ipvs: generic netlink family %s: %w", genlName, err)
	}
	k := &netlinkKernel{c: c, g: g, fam: fam, procSysctls: procSysctls{root: "/proc/sys/net/ipv4/vs"}}
	if b, err := newBatcher(fam.ID); err == nil {
		k.b = b
	}
	return k, nil
}

// ApplyOps performs operations in order, many per netlink exchange.
func (k *netlinkKernel) ApplyOps(ops []Op) []error {
	for _, op := range ops {
		if op.Service.PEName != "" {
			k.pe.Store(true)
		}
	}
	if k.b == nil {
		return applyEach(k, ops)
	}
	return k.b.apply(ops)
}

func closeClient(c cfipvs.Client) {
	if cl, ok := c.(io.Closer); ok {
		cl.Close()
	}
}

func (k *netlinkKernel) Close() error {
	closeClient(k.c)
	if k.b != nil {
		k.b.close()
	}
	return k.g.Close()
}

// dumped returns a dump's entries; the client's "the dump was empty" is no
// entries and no error.
func dumped[T any](entries []T, err error) ([]T, error) {
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

func (k *netlinkKernel) Services() ([]ServiceInfo, error) {
	svcs, err := dumped(k.c.Services())
	if err != nil || svcs == nil {
		return nil, err
	}
	var pe map[ServiceKey]string
	if k.pe.Load() {
		if pe, err = k.persistenceEngines(); err != nil {
			return nil, err
		}
	}
	out := make([]ServiceInfo, 0, len(svcs))
	for _, s := range svcs {
		svc := fromCFService(s.Service)
		svc.PEName = pe[svc.ServiceKey]
		out = append(out, ServiceInfo{Service: svc, Stats: pickStats(s.Stats, s.Stats64)})
	}
	return out, nil
}

func (k *netlinkKernel) Destinations(sk ServiceKey) ([]DestInfo, error) {
	dests, err := dumped(k.c.Destinations(toCFService(Service{ServiceKey: sk})))
	if err != nil || dests == nil {
		return nil, err
	}
	out := make([]DestInfo, 0, len(dests))
	for _, d := range dests {
		out = append(out, DestInfo{
			Destination:   fromCFDest(d.Destination),
			ActiveConns:   d.ActiveConnections,
			InactiveConns: d.InactiveConnections,
			PersistConns:  d.PersistentConnections,
			Stats:         pickStats(d.Stats, d.Stats64),
		})
	}
	return out, nil
}

func (k *netlinkKernel) CreateService(s Service) error { return k.c.CreateService(toCFService(s)) }
func (k *netlinkKernel) UpdateService(s Service) error { return k.c.UpdateService(toCFService(s)) }
func (k *netlinkKernel) RemoveService(sk ServiceKey) error {
	return k.c.RemoveService(toCFService(Service{ServiceKey: sk}))
}

func (k *netlinkKernel) CreateDestination(sk ServiceKey, d Destination) error {
	return k.c.CreateDestination(toCFService(Service{ServiceKey: sk}), toCFDest(d))
}

func (k *netlinkKernel) UpdateDestination(sk ServiceKey, d Destination) error {
	return k.c.UpdateDestination(toCFService(Service{ServiceKey: sk}), toCFDest(d))
}

func (k *netlinkKernel) RemoveDestination(sk ServiceKey, dk DestKey) error {
	return k.c.RemoveDestination(toCFService(Service{ServiceKey: sk}), toCFDest(Destination{DestKey: dk}))
}

func toCFService(s Service) cfipvs.Service {
	out := cfipvs.Service{
		Scheduler: s.Scheduler,
		Timeout:   s.Timeout,
		Flags:     cfipvs.Flags(s.Flags),
		Family:    cfipvs.AddressFamily(s.Family),
		FWMark:    s.Fwmark,
	}
	if s.Fwmark == 0 {
		out.Address = s.Addr
		out.Port = s.Port
		out.Protocol = cfipvs.Protocol(s.Proto)
	}
	switch {
	case s.Family == INET6 && s.Netmask > 0:
		out.Netmask = netmask.MaskFrom(int(min(s.Netmask, 128)), 128)
	case s.Family == INET && s.Netmask != 0:
		m := s.Netmask
		out.Netmask = netmask.MaskFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
	}
	return out
}

func fromCFService(s cfipvs.Service) Service {
	out := Service{
		ServiceKey: ServiceKey{Family: Family(s.Family), Fwmark: s.FWMark},
		Scheduler:  s.Scheduler,
		Flags:      Flags(s.Flags),
		Timeout:    s.Timeout,
	}
	if s.FWMark == 0 {
		out.Proto = Protocol(s.Protocol)
		out.Addr = s.Address.Unmap()
		out.Port = s.Port
	}
	switch {
	case s.Netmask.Is4():
		b := s.Netmask.AsSlice()
		out.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	case s.Netmask.Is6():
		out.Netmask = uint32(s.Netmask.Bits())
	}
	return out
}

func toCFDest(d Destination) cfipvs.Destination {
	return cfipvs.Destination{
		Address:        d.Addr,
		Port:           d.Port,
		Family:         cfipvs.AddressFamily(FamilyOf(d.Addr)),
		FwdMethod:      cfipvs.ForwardType(d.Fwd),
		Weight:         uint32(max(d.Weight, 0)),
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
		TunnelType:     cfipvs.TunnelType(d.TunType),
		TunnelPort:     d.TunPort,
		TunnelFlags:    cfipvs.TunnelFlags(d.TunFlags),
	}
}

func fromCFDest(d cfipvs.Destination) Destination {
	return Destination{
		DestKey:    DestKey{Addr: d.Address.Unmap(), Port: d.Port},
		Fwd:        Forward(d.FwdMethod),
		Weight:     int(int32(d.Weight)),
		UThreshold: d.UpperThreshold,
		LThreshold: d.LowerThreshold,
		TunType:    TunnelType(d.TunnelType),
		TunPort:    d.TunnelPort,
		TunFlags:   TunnelFlags(d.TunnelFlags),
	}
}

// pickStats prefers the 64-bit counters (Linux 4.1+) when the kernel sent them.
func pickStats(s32, s64 cfipvs.Stats) Stats {
	s := s64
	if s64 == (cfipvs.Stats{}) {
		s = s32
	}
	return Stats{
		Connections: s.Connections, PacketsIn: s.IncomingPackets, PacketsOut: s.OutgoingPackets,
		BytesIn: s.IncomingBytes, BytesOut: s.OutgoingBytes,
		CPS: s.ConnectionRate, PPSIn: s.IncomingPacketRate, PPSOut: s.OutgoingPacketRate,
		BPSIn: s.IncomingByteRate, BPSOut: s.OutgoingByteRate,
	}
}

// execute sends one IPVS generic netlink command.
func (k *netlinkKernel) execute(cmd uint8, flags netlink.HeaderFlags, enc func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	var data []byte
	if enc != nil {
		ae := netlink.NewAttributeEncoder()
		enc(ae)
		b, err := ae.Encode()
		if err != nil {
			return nil, err
		}
		data = b
	}
	return k.g.Execute(genetlink.Message{Header: genetlink.Header{Command: cmd, Version: genlVersion}, Data: data}, k.fam.ID, flags)
}

func (k *netlinkKernel) Timeouts() (Timeouts, error) {
	msgs, err := k.execute(cmdGetConfig, netlink.Request, nil)
	if err != nil {
		return Timeouts{}, err
	}
	var t Timeouts
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return Timeouts{}, err
		}
		for ad.Next() {
			v := time.Duration(ad.Uint32()) * time.Second
			switch ad.Type() {
			case cmdAttrTimeoutTCP:
				t.TCP = v
			case cmdAttrTimeoutTCPFin:
				t.TCPFin = v
			case cmdAttrTimeoutUDP:
				t.UDP = v
			}
		}
		if err := ad.Err(); err != nil {
			return Timeouts{}, err
		}
	}
	return t, nil
}

func (k *netlinkKernel) SetTimeouts(t Timeouts) error {
	if t == (Timeouts{}) {
		return nil
	}
	_, err := k.execute(cmdSetConfig, netlink.Request|netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		for _, x := range []struct {
			typ uint16
			d   time.Duration
		}{{cmdAttrTimeoutTCP, t.TCP}, {cmdAttrTimeoutTCPFin, t.TCPFin}, {cmdAttrTimeoutUDP, t.UDP}} {
			if x.d > 0 {
				ae.Uint32(x.typ, uint32(x.d/time.Second))
			}
		}
	})
	return err
}

// dumpNested runs the dump cmd and calls fn on the nested attributes of
// each attribute attr of the answer.
func (k *netlinkKernel) dumpNested(cmd uint8, attr uint16, fn func(nad *netlink.AttributeDecoder)) error {
	msgs, err := k.execute(cmd, netlink.Request|netlink.Dump, nil)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			return err
		}
		for ad.Next() {
			if ad.Type() == attr {
				ad.Nested(func(nad *netlink.AttributeDecoder) error { fn(nad); return nil })
			}
		}
		if err := ad.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (k *netlinkKernel) SyncDaemons() ([]SyncDaemon, error) {
	var out []SyncDaemon
	err := k.dumpNested(cmdGetDaemon, cmdAttrDaemon, func(nad *netlink.AttributeDecoder) {
		var d SyncDaemon
		for nad.Next() {
			switch nad.Type() {
			case daemonAttrState:
				d.State = SyncState(nad.Uint32())
			case daemonAttrMcastIfn:
				d.Interface = nad.String()
			case daemonAttrSyncID:
				d.SyncID = nad.Uint32()
			case daemonAttrSyncMaxlen:
				d.MaxLen = nad.Uint16()
			case daemonAttrMcastGroup, daemonAttrMcastGroup6:
				if a, ok := netip.AddrFromSlice(nad.Bytes()); ok {
					d.Group = a
				}
			case daemonAttrMcastPort:
				d.Port = nad.Uint16()
			case daemonAttrMcastTTL:
				d.TTL = nad.Uint8()
			}
		}
		out = append(out, d)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (k *netlinkKernel) StartSyncDaemon(d SyncDaemon) error {
	_, err := k.execute(cmdNewDaemon, netlink.Request|netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Nested(cmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
			nae.Uint32(daemonAttrState, uint32(d.State))
			nae.String(daemonAttrMcastIfn, d.Interface)
			nae.Uint32(daemonAttrSyncID, d.SyncID)
			if d.MaxLen != 0 {
				nae.Uint16(daemonAttrSyncMaxlen, d.MaxLen)
			}
			if d.Group.Is4() {
				b := d.Group.As4()
				nae.Bytes(daemonAttrMcastGroup, b[:])
			} else if d.Group.Is6() {
				b := d.Group.As16()
				nae.Bytes(daemonAttrMcastGroup6, b[:])
			}
			if d.Port != 0 {
				nae.Uint16(daemonAttrMcastPort, d.Port)
			}
			if d.TTL != 0 {
				nae.Uint8(daemonAttrMcastTTL, d.TTL)
			}
			return nil
		})
	})
	if errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return err
}

func (k *netlinkKernel) StopSyncDaemon(s SyncState) error {
	_, err := k.execute(cmdDelDaemon, netlink.Request|netlink.Acknowledge, func(ae *netlink.AttributeEncoder) {
		ae.Nested(cmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
			nae.Uint32(daemonAttrState, uint32(s))
			return nil
		})
	})
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func (k *netlinkKernel) Flush() error {
	_, err := k.execute(cmdFlush, netlink.Request|netlink.Acknowledge, nil)
	return err
}

// Info reads the IPVS version and the size of the connection hash table
// (IPVS_CMD_GET_INFO), the first line of ipvsadm's listing.
func (k *netlinkKernel) Info() (Info, error) {
	info, err := k.c.Info()
	if err != nil {
		return Info{}, err
	}
	v := info.Version
	return Info{Version: uint32(v[0])<<16 | uint32(v[1])<<8 | uint32(v[2]), Size: info.ConnectionTableSize}, nil
}
