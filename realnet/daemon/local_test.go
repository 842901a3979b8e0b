package daemon

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// Every RPC the daemon serves has an entry in one of the two tables, and
// the network port decides it by role, cluster, removal and lock.
func TestAuthorizeRPC(t *testing.T) {
	loop := realnet.NewLoop()
	defer loop.Stop()
	tr, err := realnet.NewTransport(realnet.TransportConfig{ID: "self", Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.SetOrg("c1")
	d := &Daemon{tr: tr}
	d.adm.Store(&admission{manager: true, nodes: map[env.NodeID]knownNode{"gone": {removed: true}}})

	mgr := env.Peer{ID: "m", Role: env.RoleManager, Org: "c1"}
	wrk := env.Peer{ID: "w", Role: env.RoleWorker, Org: "c1"}
	anon := env.Peer{ID: "j"}
	var methods []string
	for _, sd := range []grpc.ServiceDesc{rpc.Control_ServiceDesc, rpc.Daemon_ServiceDesc, rpc.Peer_ServiceDesc} {
		for _, m := range sd.Methods {
			methods = append(methods, "/"+sd.ServiceName+"/"+m.MethodName)
		}
	}
	for _, m := range methods {
		local := m == methodLeave || m == methodUnlock || m == methodDigests || m == methodLedTerms || m == methodSkewClock || m == methodSetLinkFault
		if err := d.authorizeRPC(mgr, m); (err == nil) == local {
			t.Errorf("%s as a manager over the network: %v", m, err)
		}
		if strings.HasPrefix(m, "/swarm.Control/") {
			if err := d.authorizeRPC(wrk, m); !errors.Is(err, ca.ErrPermissionDenied) {
				t.Errorf("%s as a worker: %v", m, err)
			}
		}
		if err := d.authorizeRPC(anon, m); (err == nil) != (m == methodJoin) {
			t.Errorf("%s without a certificate: %v", m, err)
		}
	}
	if err := d.authorizeRPC(wrk, methodStatus); err != nil {
		t.Errorf("a worker's status: %v", err)
	}
	if err := d.authorizeRPC(env.Peer{ID: "x", Role: env.RoleManager, Org: "c2"}, methodStatus); err == nil {
		t.Error("another cluster's manager was let in")
	}
	if err := d.authorizeRPC(env.Peer{ID: "gone", Role: env.RoleManager, Org: "c1"}, methodStatus); err == nil {
		t.Error("a removed node was let in")
	}
	d.locked.Store(true)
	if err := d.authorizeRPC(mgr, methodStatus); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("locked: %v", err)
	}
}
