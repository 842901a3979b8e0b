package controlapi

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Networks without a subnet get a /20 (4094 task addresses) from
// 10.128.0.0/9, the first that overlaps no network. The allocator's
// ingress network takes the bottom of 10.0.0.0/8, so the two rarely meet;
// when they do, overlap is refused either way.
const (
	DefaultNetworkDriver = "overlay"
	defaultPool          = "10.128.0.0/9"
	defaultNetworkBits   = 20
)

// CreateNetwork creates a network. Its subnet must overlap no other
// network's (a task's address must say which network it is on); an empty
// subnet is chosen. done gets the network as stored.
func (s *Server) CreateNetwork(spec *api.NetworkSpec, done func(*api.Network, error)) {
	if err := api.ValidateNetworkSpec(spec); err != nil {
		done(nil, invalidSpec("network", err))
		return
	}
	n := &api.Network{Id: api.NewID(s.rand), Spec: &api.NetworkSpec{Name: spec.Name, Driver: spec.Driver, Subnet: spec.Subnet}}
	if n.Spec.Driver == "" {
		n.Spec.Driver = DefaultNetworkDriver
	}
	s.st.Update(func(tx *store.Tx) error {
		if tx.NetworkByName(spec.Name) != nil {
			return errorf(ErrConflict, store.ErrNameConflict, "network name %q is already in use", spec.Name)
		}
		existing := tx.Networks()
		if n.Spec.Subnet == "" {
			subnet, ok := freeSubnet(existing)
			if !ok {
				return errorf(ErrFailedPrecondition, nil, "no free /%d left in %s: give network %q a subnet", defaultNetworkBits, defaultPool, spec.Name)
			}
			n.Spec.Subnet = subnet
		}
		p, _ := api.ParseSubnet(n.Spec.Subnet)
		for _, other := range existing {
			if q, why := api.ParseSubnet(other.GetSpec().GetSubnet()); why == "" && q.Overlaps(p) {
				return errorf(ErrConflict, nil, "subnet %s overlaps network %q (%s)", p, other.Spec.GetName(), q)
			}
		}
		return tx.Create(n)
	}, func(err error) {
		if err != nil {
			done(nil, storeError(fmt.Sprintf("create network %q", spec.Name), err))
			return
		}
		if cur := s.st.Network(n.Id); cur != nil {
			n = cur
		}
		done(n, nil)
	})
}

// freeSubnet returns the first /20 of the default pool that overlaps no
// network.
func freeSubnet(existing []*api.Network) (string, bool) {
	var taken []netip.Prefix
	for _, n := range existing {
		if p, why := api.ParseSubnet(n.GetSpec().GetSubnet()); why == "" {
			taken = append(taken, p)
		}
	}
	pool := netip.MustParsePrefix(defaultPool)
	base := pool.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	step := uint32(1) << (32 - defaultNetworkBits)
	count := uint32(1) << (defaultNetworkBits - pool.Bits())
	for i := uint32(0); i < count; i++ {
		v := start + i*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), defaultNetworkBits)
		free := true
		for _, t := range taken {
			if t.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return p.String(), true
		}
	}
	return "", false
}

// GetNetwork returns a network by ID or name.
func (s *Server) GetNetwork(ref string) (*api.Network, error) {
	return lookupNetwork(s.st, ref)
}

// ListNetworks returns the networks whose name starts with namePrefix, in
// ID order.
func (s *Server) ListNetworks(namePrefix string) []*api.Network {
	var out []*api.Network
	for _, n := range s.st.Networks() {
		if strings.HasPrefix(n.GetSpec().GetName(), namePrefix) {
			out = append(out, n)
		}
	}
	return out
}

// RemoveNetwork removes a network nothing uses: no service's spec (or
// previous spec) names it, no service holds a virtual IP on it, and no
// live task is attached to it. The ingress network is used implicitly by
// every service that names no network, through their virtual IPs and
// tasks.
func (s *Server) RemoveNetwork(ref string, done func(error)) {
	s.update(func(tx *store.Tx) error {
		n, err := lookupNetwork(tx, ref)
		if err != nil {
			return err
		}
		name := n.Spec.GetName()
		users := servicesUsing(tx, func(spec *api.ServiceSpec) bool {
			for _, id := range spec.GetTask().GetNetworks() {
				if id == n.Id {
					return true
				}
			}
			return false
		})
		for _, svc := range tx.Services() {
			for _, v := range allocator.ParseVirtualIPs(svc.GetEndpoint().GetVirtualIp()) {
				if v.NetworkID == n.Id && !containsString(users, svc.Spec.GetName()) {
					users = append(users, svc.Spec.GetName())
				}
			}
		}
		if len(users) > 0 {
			return errorf(ErrFailedPrecondition, nil, "network %q is in use by service %s", name, quoteNames(users))
		}
		attached := 0
		for _, t := range tx.Tasks() {
			if t.GetStatus().GetState() > api.TaskState_TASK_STATE_RUNNING {
				continue
			}
			for _, a := range t.Networks {
				if a.GetNetworkId() == n.Id {
					attached++
				}
			}
		}
		if attached > 0 {
			return errorf(ErrFailedPrecondition, nil, "network %q is in use by %d tasks", name, attached)
		}
		return tx.Delete(store.KindNetwork, n.Id, 0)
	}, func(err error) {
		done(storeError(fmt.Sprintf("remove network %q", ref), err))
	})
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
