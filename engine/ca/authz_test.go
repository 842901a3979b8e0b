package ca_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
)

// registeredMethods lists every method a node can receive or serve: the
// Method() of every engine message (every swarm.api protobuf message that
// is an env.Message, and raft's), and every control API method.
func registeredMethods(t *testing.T) []string {
	t.Helper()
	var out []string
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if !strings.HasPrefix(string(mt.Descriptor().FullName()), "swarm.api.") {
			return true
		}
		if m, ok := mt.New().Interface().(env.Message); ok {
			out = append(out, m.Method())
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found only %d engine messages in the protobuf registry", len(out))
	}
	out = append(out, (&raft.Message{}).Method())
	out = append(out, controlapi.Methods...)
	slices.Sort(out)
	return slices.Compact(out)
}

// Fail closed: every method a node can be sent has an entry in the
// authorization table. A new message or control method fails this test
// until someone decides who may use it.
func TestEveryMethodHasAnEntry(t *testing.T) {
	for _, m := range registeredMethods(t) {
		if ca.Allowed(m) == nil {
			t.Errorf("%s has no entry in the authorization table", m)
		}
	}
	for _, m := range ca.Methods() {
		if len(ca.Allowed(m)) == 0 {
			t.Errorf("%s is in the table but nobody may use it", m)
		}
	}
}

// Unknown methods are refused, whoever asks.
func TestUnknownMethodIsRefused(t *testing.T) {
	for _, p := range []env.Peer{{ID: "m1", Role: env.RoleManager}, {ID: "w1", Role: env.RoleWorker}, {}} {
		for _, m := range []string{"/swarm.Control/Nope", "/swarm.Raft/Nope", "", "/swarm.Dispatcher/"} {
			if err := ca.Authorize(m, p); !errors.Is(err, ca.ErrPermissionDenied) {
				t.Errorf("%s as %s: %v", m, p.Role, err)
			}
		}
	}
}

func TestAuthorize(t *testing.T) {
	mgr := env.Peer{ID: "m1", Role: env.RoleManager, Org: "c"}
	wrk := env.Peer{ID: "w1", Role: env.RoleWorker, Org: "c"}
	none := env.Peer{ID: "x"}
	type row struct {
		method         string
		mgr, wrk, none bool
	}
	rows := []row{
		{raft.MethodStep, true, false, false},
		{api.MethodRaftJoin, true, false, false},
		{api.MethodRaftJoinResponse, true, false, false},
		{api.MethodSessionRequest, true, true, false},
		{api.MethodHeartbeat, true, true, false},
		{api.MethodTaskStatusReport, true, true, false},
		{api.MethodSessionResponse, true, false, false},
		{api.MethodAssignments, true, false, false},
		{api.MethodHeartbeatResponse, true, false, false},
		{api.MethodTaskStatusAck, true, false, false},
		{api.MethodIssueNodeCertificate, true, true, true},
		{api.MethodGetRootCA, true, true, true},
		{api.MethodIssueNodeCertificateResponse, true, false, true},
		{api.MethodGetRootCAResponse, true, false, true},
		{api.MethodRootRotation, true, false, false},
		{ca.MethodRotateRootCA, true, false, false},
		{ca.MethodRotateJoinToken, true, false, false},
		{ca.MethodGetJoinTokens, true, false, false},
	}
	for _, m := range controlapi.Methods {
		rows = append(rows, row{m, true, false, false})
	}
	for _, r := range rows {
		for _, c := range []struct {
			p  env.Peer
			ok bool
		}{{mgr, r.mgr}, {wrk, r.wrk}, {none, r.none}} {
			err := ca.Authorize(r.method, c.p)
			if (err == nil) != c.ok {
				t.Errorf("%s as %s: %v, want allowed=%v", r.method, c.p.Role, err, c.ok)
			}
		}
	}
}
