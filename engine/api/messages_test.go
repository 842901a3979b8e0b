package api_test

import (
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// Every dispatcher-protocol message travels under the dispatcher service,
// named after itself: the security layer authorizes by that prefix.
func TestDispatcherMethods(t *testing.T) {
	for _, c := range []struct {
		m    env.Message
		name string
	}{
		{&api.SessionRequest{}, "SessionRequest"},
		{&api.SessionResponse{}, "SessionResponse"},
		{&api.Heartbeat{}, "Heartbeat"},
		{&api.HeartbeatResponse{}, "HeartbeatResponse"},
		{&api.Assignments{}, "Assignments"},
		{&api.TaskStatusReport{}, "TaskStatusReport"},
		{&api.TaskStatusAck{}, "TaskStatusAck"},
	} {
		if got, want := c.m.Method(), "/swarm.Dispatcher/"+c.name; got != want {
			t.Errorf("%T: method %q, want %q", c.m, got, want)
		}
	}
	a := &api.Assignments{Seq: 7, Full: true, Tasks: []*api.Task{{Id: "a"}}, Removed: []string{"b", "c"}}
	if got := a.TraceString(); got != "Assignments seq=7 full +1 -2" {
		t.Errorf("trace string %q", got)
	}
}
