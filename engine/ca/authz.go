package ca

import (
	"fmt"
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
)

// RPC names of the CA's calls on the control API (`swarmd join-token`,
// `swarmd ca --rotate`); like every control method, managers only.
const (
	MethodGetJoinTokens   = "/swarm.Control/GetJoinTokens"
	MethodRotateJoinToken = "/swarm.Control/RotateJoinToken"
	MethodRotateRootCA    = "/swarm.Control/RotateRootCA"
)

// roles is a set of env.Role values, one bit each.
type roles uint8

func rolesOf(rs ...env.Role) roles {
	var s roles
	for _, r := range rs {
		s |= 1 << r
	}
	return s
}

func (s roles) has(r env.Role) bool { return r <= env.RoleManager && s&(1<<r) != 0 }

// The sets the table uses. RoleNone is a peer without a verified
// certificate: a joiner presenting a token, or (on a joiner) a manager
// whose certificate the joiner cannot verify yet.
var (
	managersOnly = rolesOf(env.RoleManager)
	members      = rolesOf(env.RoleWorker, env.RoleManager)
	anyone       = rolesOf(env.RoleNone, env.RoleWorker, env.RoleManager)
	// toJoiners: answers of managers, which a node that has not joined
	// yet receives without being able to verify the sender; it checks what
	// they carry against its join token's digest instead.
	toJoiners = rolesOf(env.RoleNone, env.RoleManager)
)

// table maps every method to the roles that may send it: the sender of a
// request, or of an answer (a worker may not send Assignments). It is the
// one place authorization is decided, in both worlds; a method missing
// from it is refused (TestEveryMethodHasAnEntry fails first).
var table = buildTable()

func buildTable() map[string]roles {
	t := map[string]roles{}
	add := func(r roles, methods ...string) {
		for _, m := range methods {
			if _, dup := t[m]; dup {
				panic("ca: method listed twice in the authorization table: " + m)
			}
			t[m] = r
		}
	}
	// Raft and its membership: managers.
	add(managersOnly, raft.MethodStep, api.MethodRaftJoin, api.MethodRaftJoinResponse)
	// Dispatcher: every member asks; only managers answer.
	add(members, api.MethodSessionRequest, api.MethodHeartbeat, api.MethodTaskStatusReport)
	add(managersOnly, api.MethodSessionResponse, api.MethodHeartbeatResponse, api.MethodAssignments, api.MethodTaskStatusAck)
	// Control API: managers.
	add(managersOnly, controlapi.Methods...)
	add(managersOnly, MethodGetJoinTokens, MethodRotateJoinToken, MethodRotateRootCA)
	// CA: anyone may ask (a joiner proves itself with a token, checked by
	// the handler; a member with its certificate); managers answer.
	add(anyone, api.MethodIssueNodeCertificate, api.MethodGetRootCA)
	add(toJoiners, api.MethodIssueNodeCertificateResponse, api.MethodGetRootCAResponse)
	add(managersOnly, api.MethodRootRotation)
	return t
}

// Authorize says whether peer may send method: nil, or an error wrapping
// ErrPermissionDenied. Methods not in the table are refused. realnet
// calls it from its interceptors; engine/node for every delivered message.
func Authorize(method string, peer env.Peer) error {
	allowed, ok := table[method]
	if !ok {
		return fmt.Errorf("%w: %s is not in the authorization table", ErrPermissionDenied, method)
	}
	if !allowed.has(peer.Role) {
		who := string(peer.ID)
		if who == "" {
			who = "an unidentified peer"
		}
		return fmt.Errorf("%w: %s may not call %s as %s", ErrPermissionDenied, who, method, peer.Role)
	}
	return nil
}

// Methods lists every method in the table, sorted.
func Methods() []string {
	out := make([]string, 0, len(table))
	for m := range table {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Allowed lists the roles that may send method, for documentation and
// tests; nil when the method is not in the table.
func Allowed(method string) []env.Role {
	s, ok := table[method]
	if !ok {
		return nil
	}
	var out []env.Role
	for r := env.RoleNone; r <= env.RoleManager; r++ {
		if s.has(r) {
			out = append(out, r)
		}
	}
	return out
}
