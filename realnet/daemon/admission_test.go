package daemon

import (
	"errors"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet"
)

func TestAdmit(t *testing.T) {
	tokens := &api.JoinTokens{Worker: "SWMTKN-1-worker", Manager: "SWMTKN-1-manager"}
	d := &Daemon{}
	d.adm.Store(&admission{
		manager: true,
		tokens:  tokens,
		nodes: map[env.NodeID]knownNode{
			"w":        {},
			"promoted": {manager: true},
			"gone":     {removed: true},
		},
		members: map[env.NodeID]bool{"m": true},
	})
	for _, tc := range []struct {
		hello realnet.Hello
		role  env.Role // RoleNone: refused
	}{
		{realnet.Hello{NodeID: "m"}, env.RoleManager},                              // raft member, no token needed
		{realnet.Hello{NodeID: "w", Role: env.RoleManager}, env.RoleWorker},        // the claim counts for nothing
		{realnet.Hello{NodeID: "w", Token: tokens.Manager}, env.RoleWorker},        // the store wins over a token
		{realnet.Hello{NodeID: "promoted", Token: tokens.Worker}, env.RoleManager}, // promotion
		{realnet.Hello{NodeID: "gone", Token: tokens.Worker}, env.RoleNone},        // removed: refused
		{realnet.Hello{NodeID: "new", Token: tokens.Worker}, env.RoleWorker},       // a joiner
		{realnet.Hello{NodeID: "new", Token: tokens.Manager, Role: env.RoleWorker}, env.RoleManager},
		{realnet.Hello{NodeID: "new", Token: "SWMTKN-1-guess"}, env.RoleNone},
		{realnet.Hello{NodeID: "new"}, env.RoleNone},
		{realnet.Hello{Token: tokens.Manager}, env.RoleNone}, // no node ID
	} {
		p, err := d.admit(tc.hello)
		if tc.role == env.RoleNone {
			if err == nil || !errors.Is(err, realnet.ErrUnauthenticated) {
				t.Errorf("%+v: admitted as %+v (%v), want refused", tc.hello, p, err)
			}
			continue
		}
		if err != nil || p.Role != tc.role || p.ID != tc.hello.NodeID {
			t.Errorf("%+v: %+v, %v; want %s", tc.hello, p, err, tc.role)
		}
	}

	// A worker checks no one: it takes its managers at their word.
	d.adm.Store(&admission{})
	if p, err := d.admit(realnet.Hello{NodeID: "m", Role: env.RoleManager}); err != nil || p.Role != env.RoleManager || p.Org != "" {
		t.Fatalf("on a worker: %+v, %v", p, err)
	}
}
