package controlapi

import (
	"errors"
	"strconv"
	"strings"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// RPC names of the control API's methods, as the real-mode gRPC service
// will carry them. Authorization keys on these.
const (
	MethodCreateService   = "/swarm.Control/CreateService"
	MethodUpdateService   = "/swarm.Control/UpdateService"
	MethodScaleService    = "/swarm.Control/ScaleService"
	MethodRollbackService = "/swarm.Control/RollbackService"
	MethodRemoveService   = "/swarm.Control/RemoveService"
	MethodGetService      = "/swarm.Control/GetService"
	MethodListServices    = "/swarm.Control/ListServices"
	MethodGetTask         = "/swarm.Control/GetTask"
	MethodListTasks       = "/swarm.Control/ListTasks"
	MethodGetNode         = "/swarm.Control/GetNode"
	MethodListNodes       = "/swarm.Control/ListNodes"
	MethodUpdateNode      = "/swarm.Control/UpdateNode"
	MethodRemoveNode      = "/swarm.Control/RemoveNode"
	MethodCreateSecret    = "/swarm.Control/CreateSecret"
	MethodGetSecret       = "/swarm.Control/GetSecret"
	MethodListSecrets     = "/swarm.Control/ListSecrets"
	MethodRemoveSecret    = "/swarm.Control/RemoveSecret"
	MethodCreateConfig    = "/swarm.Control/CreateConfig"
	MethodGetConfig       = "/swarm.Control/GetConfig"
	MethodListConfigs     = "/swarm.Control/ListConfigs"
	MethodRemoveConfig    = "/swarm.Control/RemoveConfig"
	MethodCreateNetwork   = "/swarm.Control/CreateNetwork"
	MethodGetNetwork      = "/swarm.Control/GetNetwork"
	MethodListNetworks    = "/swarm.Control/ListNetworks"
	MethodRemoveNetwork   = "/swarm.Control/RemoveNetwork"
)

// Methods lists every control API method's RPC name. Every one of them
// is manager-only: a worker's certificate must be refused on all. The
// node helpers (DrainNode, PromoteNode...) travel as UpdateNode.
var Methods = []string{
	MethodCreateService, MethodUpdateService, MethodScaleService, MethodRollbackService,
	MethodRemoveService, MethodGetService, MethodListServices,
	MethodGetTask, MethodListTasks,
	MethodGetNode, MethodListNodes, MethodUpdateNode, MethodRemoveNode,
	MethodCreateSecret, MethodGetSecret, MethodListSecrets, MethodRemoveSecret,
	MethodCreateConfig, MethodGetConfig, MethodListConfigs, MethodRemoveConfig,
	MethodCreateNetwork, MethodGetNetwork, MethodListNetworks, MethodRemoveNetwork,
	MethodGetUnlockKey, MethodSetAutolock, MethodRotateUnlockKey, MethodRotateDataKey,
}

// Server serves the control API from one manager's store. It runs on the
// node's loop.
type Server struct {
	st   *store.Store
	rand env.Rand
	// reach, when set, says whether a manager is reachable (see
	// SetReachability).
	reach func(nodeID string) (reachable, ok bool)
}

// New returns a Server writing through st and drawing object IDs from
// rand.
func New(st *store.Store, rand env.Rand) *Server {
	return &Server{st: st, rand: rand}
}

// SetReachability makes the demotion checks ask reach whether a manager is
// reachable: raft's view on the leader (raft.Node.Reachable). Where reach
// says nothing (ok false), the manager's stored status answers, or its
// readiness. Without it a leader whose own agent had lost its session
// counted itself unreachable.
func (s *Server) SetReachability(reach func(nodeID string) (reachable, ok bool)) { s.reach = reach }

// maxRetries bounds the attempts of a write that names no version (scale,
// drain, rollback...): when another write to the object commits first,
// it is read again and retried.
const maxRetries = 3

// update runs a write that is retried when a concurrent change makes it
// stale, for writes the caller did not base on a version.
func (s *Server) update(fn func(tx *store.Tx) error, done func(error)) {
	var attempt func(n int)
	attempt = func(n int) {
		s.st.Update(fn, func(err error) {
			var e *Error
			if err != nil && n < maxRetries && !errors.As(err, &e) && errors.Is(err, store.ErrSequenceConflict) {
				attempt(n + 1)
				return
			}
			done(err)
		})
	}
	attempt(1)
}

// ------------------------------------------------------------- lookups

// lookupService finds a service by ID, then by name.
func lookupService(r store.Reader, ref string) (*api.Service, error) {
	if ref == "" {
		return nil, errorf(ErrInvalidArgument, nil, "a service ID or name is required")
	}
	if s := r.Service(ref); s != nil {
		return s, nil
	}
	if s := r.ServiceByName(ref); s != nil {
		return s, nil
	}
	return nil, notFound("service", ref)
}

// lookupNode finds a node by ID, then by name, then by hostname. Removed
// nodes (tombstones) are found by ID only.
func lookupNode(r store.Reader, ref string) (*api.Node, error) {
	if ref == "" {
		return nil, errorf(ErrInvalidArgument, nil, "a node ID or name is required")
	}
	if n := r.Node(ref); n != nil {
		return n, nil
	}
	var found []*api.Node
	for _, n := range r.NodesByName(ref) {
		if !n.Removed {
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		for _, n := range r.Nodes() {
			if !n.Removed && n.GetDescription().GetHostname() == ref {
				found = append(found, n)
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, notFound("node", ref)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, n := range found {
		ids[i] = n.Id
	}
	return nil, errorf(ErrInvalidArgument, nil, "node name %q is ambiguous: use one of the IDs %s", ref, strings.Join(ids, ", "))
}

// liveNode is lookupNode refusing tombstones.
func liveNode(r store.Reader, ref string) (*api.Node, error) {
	n, err := lookupNode(r, ref)
	if err != nil {
		return nil, err
	}
	if n.Removed {
		return nil, errorf(ErrNotFound, nil, "node %q was removed from the cluster", ref)
	}
	return n, nil
}

func lookupSecret(r store.Reader, ref string) (*api.Secret, error) {
	if ref == "" {
		return nil, errorf(ErrInvalidArgument, nil, "a secret ID or name is required")
	}
	if x := r.Secret(ref); x != nil {
		return x, nil
	}
	if x := r.SecretByName(ref); x != nil {
		return x, nil
	}
	return nil, notFound("secret", ref)
}

func lookupConfig(r store.Reader, ref string) (*api.Config, error) {
	if ref == "" {
		return nil, errorf(ErrInvalidArgument, nil, "a config ID or name is required")
	}
	if x := r.Config(ref); x != nil {
		return x, nil
	}
	if x := r.ConfigByName(ref); x != nil {
		return x, nil
	}
	return nil, notFound("config", ref)
}

func lookupNetwork(r store.Reader, ref string) (*api.Network, error) {
	if ref == "" {
		return nil, errorf(ErrInvalidArgument, nil, "a network ID or name is required")
	}
	if x := r.Network(ref); x != nil {
		return x, nil
	}
	if x := r.NetworkByName(ref); x != nil {
		return x, nil
	}
	return nil, notFound("network", ref)
}

// matchLabels reports whether labels hold every filter entry; an empty
// filter value only asks for the key.
func matchLabels(labels, filter map[string]string) bool {
	for k, v := range filter {
		got, ok := labels[k]
		if !ok || v != "" && got != v {
			return false
		}
	}
	return true
}

// quoteNames formats names for a message: "a", "b" and 3 more.
func quoteNames(names []string) string {
	const show = 3
	var b strings.Builder
	for i, n := range names {
		if i == show {
			b.WriteString(" and ")
			b.WriteString(strconv.Itoa(len(names) - show))
			b.WriteString(" more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('"')
		b.WriteString(n)
		b.WriteByte('"')
	}
	return b.String()
}
