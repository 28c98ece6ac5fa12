package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NFT is the Kernel of nf_tables over netlink (github.com/google/nftables),
// in the namespace of the process: no nft binary is run.
type NFT struct {
	opts   Options
	tables [2]*nftables.Table
	sets   [2]map[string]*nftables.Set
	chains [2]map[string]*nftables.Chain
}

// NewNFT returns the kernel of a table named and prioritised as opts says.
func NewNFT(opts Options) *NFT {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	n := &NFT{opts: opts}
	for fam := range n.tables {
		nf := nftables.TableFamilyIPv4
		if Family(fam) == IPv6 {
			nf = nftables.TableFamilyIPv6
		}
		n.tables[fam] = &nftables.Table{Name: opts.Table, Family: nf}
	}
	n.reset(IPv4)
	n.reset(IPv6)
	return n
}

func (n *NFT) reset(fam Family) {
	n.sets[fam], n.chains[fam] = map[string]*nftables.Set{}, map[string]*nftables.Chain{}
}

// nd is the ICMPv6 types the ip6 table lets through: neighbour
// solicitation and advertisement.
var nd = []byte{135, 136}

// Apply implements Kernel: the ops as one batch.
func (n *NFT) Apply(ops []Op) error {
	var copts []nftables.ConnOption
	if n.opts.NetNS != 0 {
		copts = append(copts, nftables.WithNetNSFd(n.opts.NetNS))
	}
	c, err := nftables.New(copts...)
	if err != nil {
		return err
	}
	var dels []Family
	for _, o := range ops {
		if o.Kind == DelTable {
			// Deleting an absent table fails the batch: look first.
			if ok, err := n.exists(c, o.Family); err != nil {
				return err
			} else if ok {
				c.DelTable(n.tables[o.Family])
			}
			dels = append(dels, o.Family)
			continue
		}
		if err := n.add(c, o); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return err
	}
	for _, fam := range dels {
		n.reset(fam)
	}
	return nil
}

func (n *NFT) exists(c *nftables.Conn, fam Family) (bool, error) {
	t, err := c.ListTableOfFamily(n.opts.Table, n.tables[fam].Family)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	return t != nil, err
}

func (n *NFT) add(c *nftables.Conn, o Op) error {
	t := n.tables[o.Family]
	switch o.Kind {
	case AddTable:
		c.AddTable(t)
	case AddChain:
		ch := &nftables.Chain{Name: o.Name, Table: t}
		if o.Name == "in" || o.Name == "out" {
			prio := nftables.ChainPriority(n.opts.Priority)
			accept := nftables.ChainPolicyAccept
			ch.Type, ch.Priority, ch.Policy = nftables.ChainTypeFilter, &prio, &accept
			ch.Hooknum = nftables.ChainHookInput
			if o.Name == "out" {
				ch.Hooknum = nftables.ChainHookOutput
			}
		}
		n.chains[o.Family][o.Name] = c.AddChain(ch)
	case AddSet:
		return n.addSet(c, o)
	case AddRule:
		exprs, chain, err := n.rule(o)
		if err != nil {
			return err
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: n.chains[o.Family][chain], Exprs: exprs})
	case AddElems, DelElems:
		s := n.sets[o.Family][o.Name]
		if s == nil {
			return fmt.Errorf("set %s %s not made", o.Family, o.Name)
		}
		els := make([]nftables.SetElement, 0, len(o.Elems))
		for _, e := range o.Elems {
			els = append(els, element(e))
		}
		if o.Kind == AddElems {
			return c.SetAddElements(s, els)
		}
		return c.SetDeleteElements(s, els)
	}
	return nil
}

func (n *NFT) addSet(c *nftables.Conn, o Op) error {
	s := &nftables.Set{Table: n.tables[o.Family], Name: o.Name}
	var init []nftables.SetElement
	switch o.Name {
	case "vips":
		s.KeyType = nftables.TypeIPAddr
		if o.Family == IPv6 {
			s.KeyType = nftables.TypeIP6Addr
		}
	case "neighbor-discovery":
		s.KeyType, s.Constant = nftables.TypeICMP6Type, true
		for _, t := range nd {
			init = append(init, nftables.SetElement{Key: []byte{t}})
		}
	case "vips_link_local":
		kt, err := nftables.ConcatSetType(nftables.TypeIP6Addr, nftables.TypeIFIndex)
		if err != nil {
			return err
		}
		s.KeyType = kt
	case "vmac_map":
		// keepalived marks both the key and the data host-endian in the
		// set's user data (nft then prints interface names), which
		// google/nftables cannot say for the data: the set is made by a
		// batch of its own, before the rest of this one.
		s.KeyType, s.DataType, s.IsMap = nftables.TypeIFIndex, nftables.TypeIFIndex, true
		if err := c.Flush(); err != nil {
			return err
		}
		if err := newVMACMap(s.Table, n.opts.NetNS); err != nil {
			return err
		}
		n.sets[o.Family][o.Name] = s
		return nil
	case "vmac_set":
		s.KeyType, s.KeyByteOrder = nftables.TypeIFIndex, binaryutil.NativeEndian
	default:
		return fmt.Errorf("unknown set %s", o.Name)
	}
	if err := c.AddSet(s, init); err != nil {
		return err
	}
	n.sets[o.Family][o.Name] = s
	return nil
}

// newVMACMap makes the map vmac_map (interface index : interface index)
// of table t as keepalived does.
func newVMACMap(t *nftables.Table, netNS int) error {
	const hostEndian = 1 // nftables' BYTEORDER_HOST_ENDIAN
	u32 := func(v uint32) []byte { return binaryutil.BigEndian.PutUint32(v) }
	var udata []byte
	for _, typ := range []byte{0, 1} { // NFTNL_UDATA_SET_KEYBYTEORDER, _DATABYTEORDER
		udata = append(udata, typ, 4)
		udata = binary.NativeEndian.AppendUint32(udata, hostEndian)
	}
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_TABLE, Data: append([]byte(t.Name), 0)},
		{Type: unix.NFTA_SET_NAME, Data: []byte("vmac_map\x00")},
		{Type: unix.NFTA_SET_FLAGS, Data: u32(unix.NFT_SET_MAP)},
		{Type: unix.NFTA_SET_KEY_TYPE, Data: u32(nftables.TypeIFIndex.GetNFTMagic())},
		{Type: unix.NFTA_SET_KEY_LEN, Data: u32(4)},
		{Type: unix.NFTA_SET_DATA_TYPE, Data: u32(nftables.TypeIFIndex.GetNFTMagic())},
		{Type: unix.NFTA_SET_DATA_LEN, Data: u32(4)},
		{Type: unix.NFTA_SET_ID, Data: u32(1)},
		{Type: unix.NFTA_SET_USERDATA, Data: udata},
	})
	if err != nil {
		return err
	}
	nfgen := func(family byte, resID uint16) []byte {
		return append([]byte{family, unix.NFNETLINK_V0}, binaryutil.BigEndian.PutUint16(resID)...)
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netNS})
	if err != nil {
		return err
	}
	defer conn.Close()
	msgs := []netlink.Message{
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request},
			Data: nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)},
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSET),
			Flags: netlink.Request | netlink.Acknowledge | netlink.Create},
			Data: append(nfgen(byte(t.Family), 0), attrs...)},
		{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_END), Flags: netlink.Request},
			Data: nfgen(unix.AF_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)},
	}
	if _, err := conn.SendMessages(msgs); err != nil {
		return err
	}
	if _, err := conn.Receive(); err != nil {
		return fmt.Errorf("vmac_map: %w", err)
	}
	return nil
}

func element(e Elem) nftables.SetElement {
	if e.Key != 0 && e.Data == 0 {
		return nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(e.Key))}
	}
	if e.Key != 0 {
		return nftables.SetElement{Key: binaryutil.NativeEndian.PutUint32(uint32(e.Key)), Val: binaryutil.NativeEndian.PutUint32(uint32(e.Data))}
	}
	key := e.Addr.IP.Unmap().AsSlice()
	if e.Addr.linkLocal() {
		key = append(key, binaryutil.NativeEndian.PutUint32(uint32(e.Addr.Ifindex))...)
	}
	return nftables.SetElement{Key: key}
}

// Offsets in the IP headers.
const (
	ip4Proto, ip4Src, ip4Dst = 9, 12, 16
	ip6Next, ip6Src, ip6Dst  = 6, 8, 24
	metaOIFKind              = 27 // NFT_META_OIFKIND
)

func load(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

// onMacvlan loads the output interface into register 2 if it is a macvlan.
func onMacvlan() []expr.Any {
	kind := make([]byte, 16)
	copy(kind, "macvlan")
	return []expr.Any{
		&expr.Meta{Key: metaOIFKind, Register: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 2, Data: kind},
		&expr.Meta{Key: expr.MetaKeyOIF, Register: 2},
	}
}

// dupToBase duplicates the packet (its destination in register 1) to the
// base interface of the VMAC it leaves by.
func dupToBase() []expr.Any {
	return append(onMacvlan(),
		&expr.Lookup{SourceRegister: 2, DestRegister: 2, IsDestRegSet: true, SetName: "vmac_map"},
		&expr.Dup{RegAddr: 1, RegDev: 2, IsRegDevSet: true})
}

// icmp6Type matches ICMPv6 messages of type typ.
func icmp6Type(typ byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{58}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ}},
	}
}

// rule returns the expressions of a rule and its chain.
func (n *NFT) rule(o Op) ([]expr.Any, string, error) {
	v6 := o.Family == IPv6
	addr := func(src bool) *expr.Payload {
		switch {
		case v6 && src:
			return load(ip6Src, 16)
		case v6:
			return load(ip6Dst, 16)
		case src:
			return load(ip4Src, 4)
		}
		return load(ip4Dst, 4)
	}
	verdict := func(es []expr.Any, v expr.Verdict) []expr.Any {
		if n.opts.Counters {
			es = append(es, &expr.Counter{})
		}
		return append(es, &v)
	}
	drop := expr.Verdict{Kind: expr.VerdictDrop}
	lookup := func(set string) *expr.Lookup {
		l := &expr.Lookup{SourceRegister: 1, SetName: set}
		if s := n.sets[o.Family][set]; s != nil {
			l.SetID = s.ID
		}
		return l
	}
	nd := func() []expr.Any {
		return []expr.Any{
			load(ip6Next, 1),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{58}}, // ICMPv6
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			lookup("neighbor-discovery"),
		}
	}
	llGoto := func(src bool, chain string) []expr.Any {
		fe80 := netip.MustParseAddr("fe80::").AsSlice()
		mask := netip.MustParseAddr("ffc0::").AsSlice()
		return verdict([]expr.Any{
			addr(src),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: mask, Xor: make([]byte, 16)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: fe80},
		}, expr.Verdict{Kind: expr.VerdictGoto, Chain: chain})
	}
	ll := func(src bool) []expr.Any {
		meta := expr.MetaKeyIIF
		if src {
			meta = expr.MetaKeyOIF
		}
		return verdict([]expr.Any{addr(src), &expr.Meta{Key: meta, Register: 2}, lookup("vips_link_local")}, drop)
	}
	switch o.Name {
	case RuleInVIPs:
		return verdict([]expr.Any{addr(false), lookup("vips")}, drop), "in", nil
	case RuleOutVIPs:
		return verdict([]expr.Any{addr(true), lookup("vips")}, drop), "out", nil
	case RuleInND:
		return verdict(nd(), expr.Verdict{Kind: expr.VerdictAccept}), "in", nil
	case RuleOutND:
		return verdict(nd(), expr.Verdict{Kind: expr.VerdictAccept}), "out", nil
	case RuleInLLGoto:
		return llGoto(false, "in_link_local"), "in", nil
	case RuleOutLLGoto:
		return llGoto(true, "out_link_local"), "out", nil
	case RuleInLL:
		return ll(false), "in_link_local", nil
	case RuleOutLL:
		return ll(true), "out_link_local", nil
	case RuleOutVMACIGMP:
		return verdict(append([]expr.Any{
			load(ip4Proto, 1),
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}}, // IGMP
			load(ip4Dst, 4),
		}, dupToBase()...), drop), "out", nil
	case RuleOutVMACMLD:
		return verdict(append(append(icmp6Type(143), load(ip6Dst, 16)), dupToBase()...), drop), "out", nil // MLDv2 report
	case RuleOutVMACRS:
		return verdict(append(icmp6Type(133), append(onMacvlan(), // router solicitation
			&expr.Lookup{SourceRegister: 2, SetName: "vmac_set"})...), drop), "out", nil
	}
	return nil, "", fmt.Errorf("unknown rule %q", o.Name)
}
