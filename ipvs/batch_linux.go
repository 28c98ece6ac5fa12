//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"golang.org/x/sys/unix"
)

// IPVS generic netlink commands and attributes for services and
// destinations (include/uapi/linux/ip_vs.h).
const (
	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
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
			payload, err := encodeOp(ops[end])
			if err != nil {
				errs[end] = err
				end++
				continue
			}
			b.seq++
			lastHdr = len(buf)
			buf = appendMessage(buf, b.family, b.seq, payload)
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

// appendMessage appends a netlink message carrying a generic netlink
// header and payload.
func appendMessage(buf []byte, family uint16, seq uint32, payload []byte) []byte {
	const hdr = unix.NLMSG_HDRLEN + unix.GENL_HDRLEN
	total := hdr + len(payload) - 1 // payload[0] is the command, in the header
	var h [hdr]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(total))
	binary.NativeEndian.PutUint16(h[4:], family)
	binary.NativeEndian.PutUint16(h[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(h[8:], seq)
	binary.NativeEndian.PutUint32(h[12:], 0)
	buf = append(buf, h[:]...)
	buf[len(buf)-4] = payload[0] // command
	buf[len(buf)-3] = genlVersion
	buf = append(buf, payload[1:]...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// encodeOp returns the command byte followed by the attributes of an op.
func encodeOp(op Op) ([]byte, error) {
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
		return nil, fmt.Errorf("ipvs: unknown operation %v", op.Kind)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Do(cmdAttrService, func() ([]byte, error) { return encodeService(op.Service) })
	if op.Kind == OpCreateDest || op.Kind == OpUpdateDest || op.Kind == OpRemoveDest {
		ae.Do(cmdAttrDest, func() ([]byte, error) { return encodeDest(op.Dest) })
	}
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return append([]byte{cmd}, b...), nil
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// encodeService encodes a service as the kernel parses it (and as
// github.com/cloudflare/ipvs does): flags with an all-ones mask, the IPv4
// netmask as an address, the IPv6 one as a prefix length.
func encodeService(s Service) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(svcAttrAF, uint16(s.Family))
	if s.Fwmark != 0 {
		ae.Uint32(svcAttrFwmark, s.Fwmark)
	} else {
		ae.Uint16(svcAttrProtocol, uint16(s.Proto))
		ae.Bytes(svcAttrAddr, s.Addr.AsSlice())
		ae.Bytes(svcAttrPort, be16(s.Port))
	}
	ae.String(svcAttrSchedName, s.Scheduler)
	flags := make([]byte, 8)
	binary.NativeEndian.PutUint32(flags, uint32(s.Flags))
	binary.NativeEndian.PutUint32(flags[4:], 0xffffffff)
	ae.Bytes(svcAttrFlags, flags)
	ae.Uint32(svcAttrTimeout, s.Timeout)
	switch {
	case s.Family == INET6 && s.Netmask > 0:
		b := make([]byte, 4)
		nlenc.PutUint32(b, min(s.Netmask, 128))
		ae.Bytes(svcAttrNetmask, b)
	case s.Family == INET && s.Netmask != 0:
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, s.Netmask)
		ae.Bytes(svcAttrNetmask, b)
	}
	return ae.Encode()
}

func encodeDest(d Destination) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Uint16(destAttrAddrFam, uint16(FamilyOf(d.Addr)))
	ae.Bytes(destAttrAddr, d.Addr.AsSlice())
	ae.Bytes(destAttrPort, be16(d.Port))
	ae.Uint32(destAttrFwdMethod, uint32(d.Fwd))
	ae.Uint32(destAttrWeight, uint32(max(d.Weight, 0)))
	ae.Uint32(destAttrUThresh, d.UThreshold)
	ae.Uint32(destAttrLThresh, d.LThreshold)
	ae.Uint8(destAttrTunType, uint8(d.TunType))
	ae.Bytes(destAttrTunPort, be16(d.TunPort))
	ae.Uint16(destAttrTunFlags, uint16(d.TunFlags))
	return ae.Encode()
}
