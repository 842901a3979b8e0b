package agent_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/sim"
)

// FuzzAgentMessages feeds an agent with a session arbitrary messages from
// its manager, as a real transport would decode them. Messages naming
// session "S" carry the live session's ID. Whatever comes, the agent must
// not panic, must never run another node's task, and must never report a
// task's state backwards.
func FuzzAgentMessages(f *testing.F) {
	add := func(msgs ...proto.Message) {
		var b []byte
		for _, m := range msgs {
			data, err := proto.Marshal(m)
			if err != nil || len(data) > 255 {
				f.Fatalf("seed: %v (%d bytes)", err, len(data))
			}
			kind := byte(0)
			switch m.(type) {
			case *api.HeartbeatResponse:
				kind = 1
			case *api.Assignments:
				kind = 2
			case *api.TaskStatusAck:
				kind = 3
			}
			b = append(b, kind, byte(len(data)))
			b = append(b, data...)
		}
		f.Add(b)
	}
	task := func(id, node string, desired api.TaskState, image string) *api.Task {
		return &api.Task{Id: id, NodeId: node, DesiredState: desired,
			Spec:   &api.TaskSpec{Container: &api.ContainerSpec{Image: image}},
			Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_ASSIGNED}}
	}
	running := api.TaskState_TASK_STATE_RUNNING
	add(&api.Assignments{SessionId: "S", Seq: 1, Full: true, Tasks: []*api.Task{task("a", "w1", running, "web")}})
	add(&api.Assignments{SessionId: "S", Seq: 1, Full: true, Tasks: []*api.Task{task("x", "w2", running, "web")}})
	add(&api.Assignments{SessionId: "S", Seq: 1, Full: true, Tasks: []*api.Task{task("a", "w1", running, "web")}},
		&api.Assignments{SessionId: "S", Seq: 2, Tasks: []*api.Task{task("a", "w1", api.TaskState_TASK_STATE_SHUTDOWN, "web")}},
		&api.Assignments{SessionId: "S", Seq: 3, Removed: []string{"a"}})
	add(&api.Assignments{SessionId: "S", Seq: 5, Tasks: []*api.Task{task("b", "w1", running, "bad")}},
		&api.HeartbeatResponse{SessionId: "S", AssignmentsSeq: 9})
	add(&api.HeartbeatResponse{SessionId: "S", Error: api.DispatcherError_DISPATCHER_ERROR_NOT_LEADER, Leader: "m1"},
		&api.SessionResponse{Incarnation: 1, Attempt: 2, SessionId: "T"})
	add(&api.TaskStatusAck{SessionId: "S", Seq: 1}, &api.TaskStatusAck{Error: api.DispatcherError_DISPATCHER_ERROR_UNKNOWN_SESSION})

	f.Fuzz(func(t *testing.T, data []byte) {
		k := sim.NewKernel(1)
		defer k.Activate()()
		net := sim.NewNetwork(k, sim.LinkModel{Latency: sim.Fixed(time.Millisecond)})
		m := k.AddNode("m1")
		last := map[string]api.TaskState{}
		var session string
		var mep *sim.Endpoint
		mep = net.Attach(m, "m1", func(from env.Peer, msg env.Message) {
			switch msg := msg.(type) {
			case *api.SessionRequest:
				session = "sess" + string(rune('a'+msg.Attempt%26))
				mep.Send(from.ID, &api.SessionResponse{Incarnation: msg.Incarnation, Attempt: msg.Attempt, SessionId: session})
			case *api.TaskStatusReport:
				for _, u := range msg.Updates {
					if s := u.Status.State; s < last[u.TaskId] {
						t.Fatalf("task %s reported %v after %v", u.TaskId, s, last[u.TaskId])
					}
					last[u.TaskId] = u.Status.State
				}
			}
		})
		r := &rig{t: t, k: k, net: net, w: k.AddNode("w1"), mgrs: map[env.NodeID]*manager{}}
		r.ep = net.Attach(r.w, "w1", func(from env.Peer, msg env.Message) { r.agent.Handle(from, msg) })
		r.exec = sim.NewExecutor(r.w, "w1", sim.ExecutorConfig{FailImages: []string{"bad"}})
		r.start([]env.NodeID{"m1"})
		k.RunUntil(time.Second, nil)

		for len(data) >= 2 {
			kind, size := data[0], int(data[1])
			data = data[2:]
			size = min(size, len(data))
			payload := data[:size]
			data = data[size:]
			var msg interface {
				env.Message
				proto.Message
			}
			switch kind % 4 {
			case 0:
				msg = &api.SessionResponse{}
			case 1:
				msg = &api.HeartbeatResponse{}
			case 2:
				msg = &api.Assignments{}
			default:
				msg = &api.TaskStatusAck{}
			}
			if proto.Unmarshal(payload, msg) != nil {
				continue
			}
			switch msg := msg.(type) {
			case *api.HeartbeatResponse:
				if msg.SessionId == "S" {
					msg.SessionId = session
				}
			case *api.Assignments:
				if msg.SessionId == "S" {
					msg.SessionId = session
				}
			case *api.TaskStatusAck:
				if msg.SessionId == "S" {
					msg.SessionId = session
				}
			}
			mep.Send("w1", msg)
			k.RunUntil(k.Now()+2*time.Second, nil)
		}
		k.RunUntil(k.Now()+time.Minute, nil)
		for _, id := range r.exec.Running() {
			if id == "x" {
				t.Fatal("runs another node's task")
			}
		}
		r.agent.Stop()
	})
}
