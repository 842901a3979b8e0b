package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/realnet/realcluster"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// waitFor bounds every wait: a broken cluster fails instead of hanging.
// It is no claim about speed.
const waitFor = 90 * time.Second

// fixture is one cluster and what the test knows of it.
type fixture struct {
	t    *testing.T
	c    *realcluster.Cluster
	down map[string]bool // nodes the test killed or stopped
}

// eventually polls f until it holds, or fails the test with f's last
// word.
func (f *fixture) eventually(what string, cond func(ctx context.Context) (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(waitFor)
	last := ""
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, why := cond(ctx)
		cancel()
		if ok {
			return
		}
		last = why
		time.Sleep(250 * time.Millisecond)
	}
	f.t.Fatalf("%s: did not happen within %s: %s", what, waitFor, last)
}

// leader is the node every running manager names as leader and that says
// it leads, or "".
func (f *fixture) leader(ctx context.Context) string {
	var name string
	votes, managers := map[string]int{}, 0
	for _, n := range f.c.Nodes() {
		if !n.Spec.Manager {
			continue
		}
		managers++
		if f.down[n.Spec.Name] {
			continue
		}
		st, err := n.Daemon().Status(ctx, &rpc.Empty{})
		if err != nil {
			continue
		}
		votes[st.GetLeader()]++
		if st.GetIsLeader() {
			name = n.Spec.Name
		}
	}
	if name == "" || votes[f.c.Node(name).ID()] < managers/2+1 {
		return ""
	}
	return name
}

// ctl is the leader's control API; it fails the test when there is no
// leader.
func (f *fixture) ctl(ctx context.Context) rpc.ControlClient {
	f.t.Helper()
	var l string
	f.eventually("a leader", func(ctx context.Context) (bool, string) {
		l = f.leader(ctx)
		return l != "", "no leader"
	})
	return f.c.Node(l).Control()
}

// running counts the service's running tasks in the leader's store, by
// node name.
func (f *fixture) running(ctx context.Context, service string) (map[string]int, int, error) {
	l := f.leader(ctx)
	if l == "" {
		return nil, 0, fmt.Errorf("no leader")
	}
	res, err := f.c.Node(l).Control().ListTasks(ctx, &rpc.ListTasksRequest{Service: service})
	if err != nil {
		return nil, 0, err
	}
	by, total := map[string]int{}, 0
	for _, t := range res.GetTasks() {
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING && t.GetDesiredState() <= api.TaskState_TASK_STATE_RUNNING {
			by[f.c.NameOf(t.GetNodeId())]++
			total++
		}
	}
	return by, total, nil
}

// containers lists the service's running task containers, as Docker sees
// them.
func (f *fixture) containers(ctx context.Context, serviceID string) ([]realcluster.TaskContainer, error) {
	all, err := f.c.TaskContainers(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(t realcluster.TaskContainer) bool { return !t.Running || t.ServiceID != serviceID }), nil
}

// converged: the store has want running tasks of the service, and Docker
// runs exactly want containers of it (of image, when set), on nodes the
// test did not take down.
func (f *fixture) converged(serviceID string, want int, image string) func(ctx context.Context) (bool, string) {
	return func(ctx context.Context) (bool, string) {
		_, n, err := f.running(ctx, serviceID)
		if err != nil {
			return false, err.Error()
		}
		cs, err := f.containers(ctx, serviceID)
		if err != nil {
			return false, err.Error()
		}
		good := 0
		for _, c := range cs {
			if !f.down[c.Node] && (image == "" || c.Image == image) {
				good++
			}
		}
		return n == want && good == want && len(cs) == want,
			fmt.Sprintf("store: %d running; docker: %d running, %d of them as wanted (want %d)", n, len(cs), good, want)
	}
}

// TestCluster forms a 3-manager, 2-worker cluster of swarmd containers
// and puts it through what an operator meets: a replicated service of
// real containers, the leader's machine dying, a worker's machine dying,
// a rolling update, and a daemon restart that adopts its containers.
func TestCluster(t *testing.T) {
	needDocker(t)
	ctx := context.Background()
	c, err := realcluster.Start(ctx, cli, realcluster.Config{
		Image: images.Swarmd,
		Nodes: []realcluster.NodeSpec{
			{Name: "m1", Manager: true}, {Name: "m2", Manager: true}, {Name: "m3", Manager: true},
			{Name: "w1"}, {Name: "w2"},
		},
		RaftTick:        100 * time.Millisecond,
		HeartbeatPeriod: 2 * time.Second, // a node is down after 3 missed periods
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, down: map[string]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes() {
				t.Logf("%s: %s", n.Spec.Name, c.LogTail(context.Background(), n.Spec.Name, 30))
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	// The cluster forms: one leader, three voters, five ready nodes.
	f.eventually("three voters and five ready nodes", func(ctx context.Context) (bool, string) {
		l := f.leader(ctx)
		if l == "" {
			return false, "no leader"
		}
		st, err := c.Node(l).Daemon().Status(ctx, &rpc.Empty{})
		if err != nil {
			return false, err.Error()
		}
		nodes, err := c.Node(l).Control().ListNodes(ctx, &rpc.ListNodesRequest{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range nodes.GetNodes() {
			if n.GetStatus().GetState() == api.NodeState_NODE_STATE_READY {
				ready++
			}
		}
		return len(st.GetMembers()) == 3 && ready == 5, fmt.Sprintf("%d raft members, %d ready nodes", len(st.GetMembers()), ready)
	})

	// The nodes' network port is mutual TLS on the cluster's CA: this
	// process, which holds no certificate of the cluster, is refused the
	// control API there, in plain text and over TLS alike.
	refused := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(c.Node("m1").Addr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = rpc.NewControlClient(conn).ListNodes(cctx, &rpc.ListNodesRequest{})
		return err
	}
	if err := refused(insecure.NewCredentials()); err == nil {
		t.Fatal("m1 served the control API in plain text on its network port")
	}
	if err := refused(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("m1's control API to a TLS caller without a certificate: %v, want PermissionDenied", err)
	}

	// A replicated service of 6 tasks runs as 6 real containers.
	svc, err := f.ctl(ctx).CreateService(ctx, &rpc.CreateServiceRequest{Spec: &api.ServiceSpec{
		Name:   "web",
		Task:   &api.TaskSpec{Container: &api.ContainerSpec{Image: webV1}},
		Mode:   &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 6}},
		Update: &api.UpdateConfig{Parallelism: 2, Monitor: int64(time.Second)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	id := svc.GetId()
	f.eventually("6 tasks running as containers", f.converged(id, 6, webV1))

	t.Run("leader dies, a new leader serves", func(t *testing.T) {
		f.t = t
		var old string
		f.eventually("a leader", func(ctx context.Context) (bool, string) { old = f.leader(ctx); return old != "", "no leader" })
		if err := c.Kill(ctx, old); err != nil {
			t.Fatal(err)
		}
		f.down[old] = true
		var now string
		f.eventually("a new leader", func(ctx context.Context) (bool, string) {
			now = f.leader(ctx)
			return now != "" && now != old, "leader: " + now
		})
		// The new leader takes writes, and the service comes back to 6
		// containers on the nodes still up.
		if _, err := f.ctl(ctx).ScaleService(ctx, &rpc.ScaleServiceRequest{Ref: "web", Replicas: 6}); err != nil {
			t.Fatalf("scale on the new leader %s: %v", now, err)
		}
		f.eventually("6 containers on the nodes still up", f.converged(id, 6, webV1))
		if err := c.Restart(ctx, old); err != nil {
			t.Fatal(err)
		}
		delete(f.down, old)
		f.eventually(old+" back as a voter", func(ctx context.Context) (bool, string) {
			l := f.leader(ctx)
			if l == "" {
				return false, "no leader"
			}
			st, err := c.Node(old).Daemon().Status(ctx, &rpc.Empty{})
			if err != nil {
				return false, err.Error()
			}
			return st.GetLeader() == c.Node(l).ID(), "it follows " + st.GetLeader()
		})
	})

	t.Run("worker dies, its tasks come back elsewhere", func(t *testing.T) {
		f.t = t
		f.eventually("6 containers", f.converged(id, 6, webV1))
		cs, err := f.containers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		victim := "w1"
		before := 0
		for _, c := range cs {
			if c.Node == victim {
				before++
			}
		}
		if err := c.Kill(ctx, victim); err != nil {
			t.Fatal(err)
		}
		f.down[victim] = true
		f.eventually("6 tasks running, none on "+victim, func(ctx context.Context) (bool, string) {
			ok, why := f.converged(id, 6, webV1)(ctx)
			by, _, err := f.running(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			return ok && by[victim] == 0, fmt.Sprintf("%s; %d on %s (it ran %d)", why, by[victim], victim, before)
		})
		if err := c.Restart(ctx, victim); err != nil {
			t.Fatal(err)
		}
		delete(f.down, victim)
	})

	t.Run("rolling update replaces every container", func(t *testing.T) {
		f.t = t
		f.eventually("6 containers", f.converged(id, 6, webV1))
		old, err := f.containers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		ctl := f.ctl(ctx)
		cur, err := ctl.GetService(ctx, &rpc.Ref{Ref: id})
		if err != nil {
			t.Fatal(err)
		}
		spec := cur.GetSpec()
		spec.GetTask().GetContainer().Image = webV2
		if _, err := ctl.UpdateService(ctx, &rpc.UpdateServiceRequest{Ref: id, Version: cur.GetMeta().GetVersion(), Spec: spec}); err != nil {
			t.Fatal(err)
		}
		f.eventually("6 containers of the new image", f.converged(id, 6, webV2))
		now, err := f.containers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range old {
			for _, n := range now {
				if o.ContainerID == n.ContainerID {
					t.Errorf("container %s (task %s on %s) survived the update", o.ContainerID, o.TaskID, o.Node)
				}
			}
		}
	})

	t.Run("swarmd restarts and adopts its running containers", func(t *testing.T) {
		f.t = t
		f.eventually("6 containers", f.converged(id, 6, webV2))
		cs, err := f.containers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		node := cs[0].Node
		var mine []string
		for _, c := range cs {
			if c.Node == node {
				mine = append(mine, c.ContainerID)
			}
		}
		if err := c.Stop(ctx, node); err != nil {
			t.Fatal(err)
		}
		f.down[node] = node[0] == 'm' // a stopped manager answers no status
		still, err := f.containers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range mine {
			if !slices.ContainsFunc(still, func(c realcluster.TaskContainer) bool { return c.ContainerID == want }) {
				t.Fatalf("container %s stopped with its daemon", want)
			}
		}
		if err := c.Restart(ctx, node); err != nil {
			t.Fatal(err)
		}
		delete(f.down, node)
		f.eventually(node+" runs its old containers again", func(ctx context.Context) (bool, string) {
			ok, why := f.converged(id, 6, webV2)(ctx)
			by, _, err := f.running(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			return ok && by[node] == len(mine), fmt.Sprintf("%s; %d running on %s in the store, %d before", why, by[node], node, len(mine))
		})
		now, err := f.containers(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range mine {
			if !slices.ContainsFunc(now, func(c realcluster.TaskContainer) bool { return c.ContainerID == want }) {
				t.Errorf("container %s on %s was replaced, not adopted", want, node)
			}
		}
	})
}
