package api_test

import (
	"strings"
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

// An Assignments' trace string counts secrets and configs and never shows
// their names or data.
func TestAssignmentsTraceHidesSecrets(t *testing.T) {
	a := &api.Assignments{
		Seq:            3,
		Secrets:        []*api.Secret{{Id: "s1", Spec: &api.SecretSpec{Name: "db-password", Data: []byte("not-in-any-log")}}},
		RemovedSecrets: []string{"s0"},
		Configs:        []*api.Config{{Id: "c1", Spec: &api.ConfigSpec{Name: "app.conf", Data: []byte("k=v")}}},
	}
	got := a.TraceString()
	if got != "Assignments seq=3 +0 -0 secrets +1 -1 configs +1 -0" {
		t.Errorf("trace string %q", got)
	}
	for _, leak := range []string{"db-password", "not-in-any-log", "s1", "k=v"} {
		if strings.Contains(got, leak) {
			t.Errorf("trace string %q shows %q", got, leak)
		}
	}
}
