package dispatcher_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

// FuzzDispatcherRequests feeds a leader's dispatcher arbitrary requests
// from a worker, as a real transport would decode them from the wire. The
// worker holds a session, so requests naming session "S" get past the
// session check. Whatever comes, the dispatcher must not panic, must never
// change another node's task, and must never move a task's state back.
func FuzzDispatcherRequests(f *testing.F) {
	add := func(msgs ...proto.Message) {
		var b []byte
		for _, m := range msgs {
			data, err := proto.Marshal(m)
			if err != nil || len(data) > 255 {
				f.Fatalf("seed: %v (%d bytes)", err, len(data))
			}
			kind := byte(0)
			switch m.(type) {
			case *api.Heartbeat:
				kind = 1
			case *api.TaskStatusReport:
				kind = 2
			}
			b = append(b, kind, byte(len(data)))
			b = append(b, data...)
		}
		f.Add(b)
	}
	st := func(id string, s api.TaskState) *api.TaskStatusUpdate {
		return &api.TaskStatusUpdate{TaskId: id, Status: &api.TaskStatus{State: s, Timestamp: 1}}
	}
	add(&api.Heartbeat{SessionId: "S", Resync: true})
	add(&api.TaskStatusReport{SessionId: "S", Seq: 1, Updates: []*api.TaskStatusUpdate{
		st("mine", api.TaskState_TASK_STATE_RUNNING), st("theirs", api.TaskState_TASK_STATE_FAILED),
	}})
	add(&api.TaskStatusReport{SessionId: "S", Seq: 1, Updates: []*api.TaskStatusUpdate{st("mine", api.TaskState_TASK_STATE_NEW)}})
	add(&api.SessionRequest{Incarnation: 1, Attempt: 2, Description: &api.NodeDescription{Hostname: "x"}},
		&api.Heartbeat{SessionId: "S"})
	add(&api.SessionRequest{Incarnation: 1, Attempt: 1}, &api.SessionRequest{Incarnation: 1, Attempt: 0})
	add(&api.TaskStatusReport{SessionId: "S", Updates: []*api.TaskStatusUpdate{{TaskId: "mine"}, {}}})

	f.Fuzz(func(t *testing.T, data []byte) {
		k := sim.NewKernel(1)
		defer k.Activate()()
		n := k.AddNode("m1")
		s := store.New(n)
		s.SetProposer(store.NewLoopback(s, n))
		var sessionID string
		d := dispatcher.New(dispatcher.Deps{
			ID: "m1", Loop: n, Clock: n, Rand: n.Rand("dispatcher"), Store: s,
			Transport: transportFunc(func(to env.NodeID, m env.Message) {
				if r, ok := m.(*api.SessionResponse); ok && to == "w1" && r.SessionId != "" {
					sessionID = r.SessionId
				}
			}),
			Config: dispatcher.Config{BatchWindow: time.Millisecond},
		})
		d.Start()
		task := func(id, node string) *api.Task {
			return &api.Task{Id: id, NodeId: node, DesiredState: api.TaskState_TASK_STATE_RUNNING,
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_STARTING, Timestamp: 5}}
		}
		s.Update(func(tx *store.Tx) error {
			if err := tx.Create(task("mine", "w1")); err != nil {
				return err
			}
			return tx.Create(task("theirs", "w2"))
		}, nil)
		w1 := env.Peer{ID: "w1", Role: env.RoleWorker}
		d.Handle(w1, &api.SessionRequest{Incarnation: 1, Attempt: 1})
		k.RunUntil(time.Second, nil)
		theirs := s.Task("theirs")

		for len(data) >= 2 {
			kind, size := data[0], int(data[1])
			data = data[2:]
			size = min(size, len(data))
			payload := data[:size]
			data = data[size:]
			var m interface {
				env.Message
				proto.Message
			}
			switch kind % 3 {
			case 0:
				m = &api.SessionRequest{}
			case 1:
				m = &api.Heartbeat{}
			default:
				m = &api.TaskStatusReport{}
			}
			if proto.Unmarshal(payload, m) != nil {
				continue
			}
			switch m := m.(type) {
			case *api.Heartbeat:
				if m.SessionId == "S" {
					m.SessionId = sessionID
				}
			case *api.TaskStatusReport:
				if m.SessionId == "S" {
					m.SessionId = sessionID
				}
			}
			before := s.Task("mine").GetStatus().GetState()
			d.Handle(w1, m)
			k.RunUntil(k.Now()+100*time.Millisecond, nil)
			if after := s.Task("mine").GetStatus().GetState(); after < before {
				t.Fatalf("state moved back: %v to %v", before, after)
			}
		}
		if s.Task("theirs") != theirs {
			t.Fatalf("w1 changed w2's task: %v", s.Task("theirs"))
		}
		if s.Node("w2") != nil {
			t.Fatal("w1 wrote another node")
		}
		d.Stop()
	})
}
