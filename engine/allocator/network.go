package allocator

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/swarmsim/swarmsim/engine/api"
)

// The default network. Tasks whose spec names no network, and tasks of
// services that publish ports in ingress mode, are attached to the network
// named IngressNetworkName; the allocator creates it at Start when no
// network has that name. A user may create it first, with a subnet of
// their choosing: the allocator uses whatever network holds the name.
const (
	IngressNetworkName = "ingress"
	IngressDriver      = "overlay"
	// DefaultIngressSubnet holds about a million tasks: one address per
	// task, so a 100,000-task service fits with room for its history.
	DefaultIngressSubnet = "10.0.0.0/12"
)

// ingressCandidates are tried in order when the default ingress subnet
// overlaps a network that exists already.
var ingressCandidates = func() []string {
	out := []string{DefaultIngressSubnet}
	for i := 1; i < 16; i++ {
		out = append(out, fmt.Sprintf("10.%d.0.0/12", 16*i))
	}
	return out
}()

// network is the allocator's view of one network: its subnet and the pool
// of its addresses. Offset 0 is the network address and offset 1 the
// gateway; IPv4 also keeps the last address (broadcast) out of the pool.
type network struct {
	id     string
	name   string
	prefix netip.Prefix
	pool   *pool
}

func newNetwork(n *api.Network) (*network, error) {
	p, why := api.ParseSubnet(n.GetSpec().GetSubnet())
	if why != "" {
		return nil, fmt.Errorf("network %q: subnet: %s", n.GetSpec().GetName(), why)
	}
	size := 1 << (p.Addr().BitLen() - p.Bits())
	hi := size
	if p.Addr().Is4() {
		hi = size - 1
	}
	return &network{id: n.Id, name: n.GetSpec().GetName(), prefix: p, pool: newPool(size, 2, hi)}, nil
}

// addr is the address at offset i of the subnet, in CIDR notation (the
// form NetworkAttachment.address takes).
func (n *network) addr(i int) string {
	b := n.prefix.Addr().As16()
	// Host bits are at most 24 (api.MaxNetworkHostBits), so the offset
	// lands in the last three bytes without carrying into the prefix.
	v := uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
	v += uint32(i)
	b[13], b[14], b[15] = byte(v>>16), byte(v>>8), byte(v)
	a := netip.AddrFrom16(b)
	if n.prefix.Addr().Is4() {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, n.prefix.Bits()).String()
}

// offset returns the offset of an address (in CIDR notation, or bare) in
// the subnet, or an error if it is not one of the subnet's.
func (n *network) offset(s string) (int, error) {
	var a netip.Addr
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return 0, err
		}
		a = p.Addr()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return 0, err
		}
	}
	if !n.prefix.Contains(a) {
		return 0, fmt.Errorf("address %s is not in network %q (%s)", s, n.name, n.prefix)
	}
	base, b := n.prefix.Addr().As16(), a.As16()
	i := int(uint32(b[13])<<16|uint32(b[14])<<8|uint32(b[15])) - int(uint32(base[13])<<16|uint32(base[14])<<8|uint32(base[15]))
	return i, nil
}

// VirtualIP is a service's virtual IP on one network.
type VirtualIP struct {
	NetworkID string
	Addr      string // CIDR notation
}

// FormatVirtualIPs encodes a service's virtual IPs into
// Endpoint.virtual_ip, which holds one string: "NETWORK_ID=ADDR/BITS"
// entries, comma-separated, in the order of the networks the service's
// tasks attach to. The network ID travels with each address so the
// allocator can give each back to its pool when it rebuilds.
func FormatVirtualIPs(vips []VirtualIP) string {
	var b strings.Builder
	for i, v := range vips {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v.NetworkID)
		b.WriteByte('=')
		b.WriteString(v.Addr)
	}
	return b.String()
}

// ParseVirtualIPs decodes Endpoint.virtual_ip (see FormatVirtualIPs).
// Malformed entries are skipped.
func ParseVirtualIPs(s string) []VirtualIP {
	if s == "" {
		return nil
	}
	var out []VirtualIP
	for e := range strings.SplitSeq(s, ",") {
		id, addr, ok := strings.Cut(e, "=")
		if !ok || id == "" || addr == "" {
			continue
		}
		out = append(out, VirtualIP{NetworkID: id, Addr: addr})
	}
	return out
}
