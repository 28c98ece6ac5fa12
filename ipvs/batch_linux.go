//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// IPVS generic netlink commands and attributes for services and
// destinations (include/uapi/linux/ip_vs.h).
const (
	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdGetService = 4
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7

	cmdAttrService = 1
	cmdAttrDest    = 2

	svcAttrAF        = 1
	svcAttrProtocol  = 2
	svcAttrAddr      = 3
	svcAttrPort      = 4
	svcAttrFwmark    = 5
	svcAttrSchedName = 6
	svcAttrFlags     = 7
	svcAttrTimeout   = 8
	svcAttrNetmask   = 9
	svcAttrPEName    = 11

	destAttrAddr      = 1
	destAttrPort      = 2
	destAttrFwdMethod = 3
	destAttrWeight    = 4
	destAttrUThresh   = 5
	destAttrLThresh   = 6
	destAttrAddrFam   = 11
	destAttrTunType   = 13
	destAttrTunPort   = 14
	destAttrTunFlags  = 15
)

const (
	// maxBatchBytes bounds one sendmsg (the kernel copies it into one skb).
	maxBatchBytes = 60 << 10
	batchTimeout  = 30 * time.Second
)

// batcher sends many IPVS mutations in one sendmsg on its own generic
// netlink socket. Only the last message of a batch asks for an
// acknowledgement; the kernel processes the messages in order, answers
// every failed one with its error and the last one with an ack, so a batch
// of N operations costs one send and usually one receive instead of N
// round trips. The result is the same as sending them one by one.
type batcher struct {
	fd     int
	family uint16
	seq    uint32
	rbuf   []byte
}

func newBatcher(family uint16) (*batcher, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Error acknowledgements without a copy of the request; bigger buffers.
	unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	tv := unix.NsecToTimeval(batchTimeout.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &batcher{fd: fd, family: family, seq: uint32(time.Now().UnixNano()), rbuf: make([]byte, 1<<16)}, nil
}

func (b *batcher) close() error { return unix.Close(b.fd) }

// apply performs ops in order and returns one error per operation.
func (b *batcher) apply(ops []Op) []error {
	errs := make([]error, len(ops))
	for start := 0; start < len(ops); {
		var buf []byte
		first := b.seq + 1
		idx := map[uint32]int{}
		end := start
		lastHdr := -1
		for end < len(ops) && len(buf) < maxBatchBytes {
			at := len(buf)
			var err error
			buf, err = appendOpMessage(buf, b.family, b.seq+1, ops[end])
			if err != nil {
				buf = buf[:at]
				errs[end] = err
				end++
				continue
			}
			b.seq++
			lastHdr = at
			idx[b.seq] = end
			end++
		}
		if lastHdr < 0 {
			start = end
			continue
		}
		// Ask for an acknowledgement of the last message only.
		flags := binary.NativeEndian.Uint16(buf[lastHdr+6:])
		binary.NativeEndian.PutUint16(buf[lastHdr+6:], flags|unix.NLM_F_ACK)
		last := b.seq
		if err := unix.Sendto(b.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			for _, i := range idx {
				errs[i] = fmt.Errorf("netlink send: %w", err)
			}
			start = end
			continue
		}
		if err := b.collect(first, last, idx, errs); err != nil {
			// Unknown outcome: the caller re-reads the kernel.
			for seq, i := range idx {
				if seq >= first && errs[i] == nil {
					errs[i] = err
				}
			}
		}
		start = end
	}
	return errs
}

// collect reads the answers of a batch until the ack of its last message.
func (b *batcher) collect(first, last uint32, idx map[uint32]int, errs []error) error {
	for {
		n, _, err := unix.Recvfrom(b.fd, b.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return errUnknownOutcome
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(b.rbuf[:n])
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		done := false
		for _, m := range msgs {
			seq := m.Header.Seq
			i, ours := idx[seq]
			if !ours || seq < first || seq > last {
				continue // a late answer of an earlier batch
			}
			if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
				if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
					errs[i] = &netlink.OpError{Op: "receive", Err: syscall.Errno(-code)}
				}
			}
			if seq == last {
				done = true
			}
		}
		if done {
			return nil
		}
	}
}

// appendOpMessage appends the netlink message of an op: the netlink and
// generic netlink headers, then the op's attributes, encoded in place (a
// batch of thousands of ops allocates nothing per op).
func appendOpMessage(buf []byte, family uint16, seq uint32, op Op) ([]byte, error) {
	var cmd byte
	switch op.Kind {
	case OpCreateService:
		cmd = cmdNewService
	case OpUpdateService:
		cmd = cmdSetService
	case OpRemoveService:
		cmd = cmdDelService
	case OpCreateDest:
		cmd = cmdNewDest
	case OpUpdateDest:
		cmd = cmdSetDest
	case OpRemoveDest:
		cmd = cmdDelDest
	default:
		return buf, fmt.Errorf("ipvs: unknown operation %v", op.Kind)
	}
	at := len(buf)
	var h [unix.NLMSG_HDRLEN + unix.GENL_HDRLEN]byte
	binary.NativeEndian.PutUint16(h[4:], family)
	binary.NativeEndian.PutUint16(h[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(h[8:], seq)
	h[unix.NLMSG_HDRLEN] = cmd
	h[unix.NLMSG_HDRLEN+1] = genlVersion
	buf = append(buf, h[:]...)
	n := len(buf)
	buf = appendService(buf, op.Service)
	buf = closeNest(buf, n, cmdAttrService)
	if op.Kind == OpCreateDest || op.Kind == OpUpdateDest || op.Kind == OpRemoveDest {
		n = len(buf)
		buf = appendDest(buf, op.Dest)
		buf = closeNest(buf, n, cmdAttrDest)
	}
	binary.NativeEndian.PutUint32(buf[at:], uint32(len(buf)-at))
	return buf, nil
}

// Netlink attributes, appended in place: a 4-byte header (length, type),
// the payload, padding to 4 bytes. The length excludes the padding.

func appendAttr(buf []byte, typ uint16, payload ...byte) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:], uint16(4+len(payload)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	buf = append(append(buf, h[:]...), payload...)
	for n := len(payload); n%4 != 0; n++ {
		buf = append(buf, 0)
	}
	return buf
}

func appendU16(buf []byte, typ uint16, v uint16) []byte {
	var p [2]byte
	binary.NativeEndian.PutUint16(p[:], v)
	return appendAttr(buf, typ, p[:]...)
}

func appendU32(buf []byte, typ uint16, v uint32) []byte {
	var p [4]byte
	binary.NativeEndian.PutUint32(p[:], v)
	return appendAttr(buf, typ, p[:]...)
}

// appendAddr appends an address attribute: 4 bytes for IPv4, 16 for IPv6,
// none for the zero Addr.
func appendAddr(buf []byte, typ uint16, a netip.Addr) []byte {
	switch {
	case a.Is4():
		b := a.As4()
		return appendAttr(buf, typ, b[:]...)
	case a.Is6():
		b := a.As16()
		return appendAttr(buf, typ, b[:]...)
	}
	return appendAttr(buf, typ)
}

// closeNest turns what was appended since off into the payload of an
// attribute of type typ (the nested attributes of a service or
// destination), shifting it right by the attribute header.
func closeNest(buf []byte, off int, typ uint16) []byte {
	n := len(buf) - off
	buf = append(buf, 0, 0, 0, 0)
	copy(buf[off+4:], buf[off:off+n])
	binary.NativeEndian.PutUint16(buf[off:], uint16(4+n))
	binary.NativeEndian.PutUint16(buf[off+2:], typ)
	return buf
}

// appendService encodes a service as the kernel parses it (and as
// github.com/cloudflare/ipvs does): flags with an all-ones mask, the IPv4
// netmask as an address, the IPv6 one as a prefix length.
func appendService(buf []byte, s Service) []byte {
	buf = appendU16(buf, svcAttrAF, uint16(s.Family))
	if s.Fwmark != 0 {
		buf = appendU32(buf, svcAttrFwmark, s.Fwmark)
	} else {
		buf = appendU16(buf, svcAttrProtocol, uint16(s.Proto))
		buf = appendAddr(buf, svcAttrAddr, s.Addr)
		buf = appendAttr(buf, svcAttrPort, byte(s.Port>>8), byte(s.Port))
	}
	buf = appendAttr(buf, svcAttrSchedName, append([]byte(s.Scheduler), 0)...)
	var flags [8]byte
	binary.NativeEndian.PutUint32(flags[:], uint32(s.Flags))
	binary.NativeEndian.PutUint32(flags[4:], 0xffffffff)
	buf = appendAttr(buf, svcAttrFlags, flags[:]...)
	buf = appendU32(buf, svcAttrTimeout, s.Timeout)
	switch {
	case s.Family == INET6 && s.Netmask > 0:
		buf = appendU32(buf, svcAttrNetmask, min(s.Netmask, 128))
	case s.Family == INET && s.Netmask != 0:
		var m [4]byte
		binary.BigEndian.PutUint32(m[:], s.Netmask)
		buf = appendAttr(buf, svcAttrNetmask, m[:]...)
	}
	if s.PEName != "" {
		buf = appendAttr(buf, svcAttrPEName, append([]byte(s.PEName), 0)...)
	}
	return buf
}

func appendDest(buf []byte, d Destination) []byte {
	buf = appendU16(buf, destAttrAddrFam, uint16(FamilyOf(d.Addr)))
	buf = appendAddr(buf, destAttrAddr, d.Addr)
	buf = appendAttr(buf, destAttrPort, byte(d.Port>>8), byte(d.Port))
	buf = appendU32(buf, destAttrFwdMethod, uint32(d.Fwd))
	buf = appendU32(buf, destAttrWeight, uint32(max(d.Weight, 0)))
	buf = appendU32(buf, destAttrUThresh, d.UThreshold)
	buf = appendU32(buf, destAttrLThresh, d.LThreshold)
	buf = appendAttr(buf, destAttrTunType, uint8(d.TunType))
	buf = appendAttr(buf, destAttrTunPort, byte(d.TunPort>>8), byte(d.TunPort))
	buf = appendU16(buf, destAttrTunFlags, uint16(d.TunFlags))
	return buf
}

// persistenceEngines lists the services that have a persistence engine
// (github.com/cloudflare/ipvs does not read IPVS_SVC_ATTR_PE_NAME).
func (k *netlinkKernel) persistenceEngines() (map[ServiceKey]string, error) {
	var out map[ServiceKey]string
	err := k.dumpNested(cmdGetService, cmdAttrService, func(nad *netlink.AttributeDecoder) {
		var sk ServiceKey
		var pe string
		var addr []byte
		for nad.Next() {
			switch nad.Type() {
			case svcAttrAF:
				sk.Family = Family(nad.Uint16())
			case svcAttrProtocol:
				sk.Proto = Protocol(nad.Uint16())
			case svcAttrAddr:
				addr = nad.Bytes()
			case svcAttrPort:
				if b := nad.Bytes(); len(b) == 2 {
					sk.Port = uint16(b[0])<<8 | uint16(b[1])
				}
			case svcAttrFwmark:
				sk.Fwmark = nad.Uint32()
			case svcAttrPEName:
				pe = nad.String()
			}
		}
		if pe == "" {
			return
		}
		if sk.Fwmark != 0 {
			sk.Proto, sk.Port = 0, 0
		} else if sk.Family == INET && len(addr) >= 4 {
			sk.Addr = netip.AddrFrom4([4]byte(addr[:4]))
		} else if len(addr) == 16 {
			sk.Addr = netip.AddrFrom16([16]byte(addr))
		}
		if out == nil {
			out = map[ServiceKey]string{}
		}
		out[sk] = pe
	})
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
