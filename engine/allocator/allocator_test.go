package allocator_test

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/allocator"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
	"github.com/swarmsim/swarmsim/sim"
)

type env struct {
	t     testing.TB
	k     *sim.Kernel
	n     *sim.Node
	st    *store.Store
	a     *allocator.Allocator
	seq   int
	rands *sim.Rand
}

// newEnv returns a one-node store applying through a Loopback on a
// simulated node, and a started allocator on it. Callers defer
// e.k.Activate()().
func newEnv(t testing.TB, cfg allocator.Config) *env {
	k := sim.NewKernel(1)
	n := k.AddNode("m1")
	st := store.New(n)
	st.SetProposer(store.NewLoopback(st, n))
	e := &env{t: t, k: k, n: n, st: st, rands: n.Rand("test")}
	e.a = e.newAllocator(cfg)
	return e
}

func (e *env) newAllocator(cfg allocator.Config) *allocator.Allocator {
	return allocator.New(allocator.Deps{Store: e.st, Loop: e.n, Rand: e.n.Rand("allocator"), Config: cfg})
}

// run lets the loop drain.
func (e *env) run() { e.k.RunUntil(e.k.Now()+time.Second, nil) }

func (e *env) update(fn func(tx *store.Tx) error) {
	e.t.Helper()
	var got error
	called := false
	e.st.Update(fn, func(err error) { got, called = err, true })
	e.run()
	if !called || got != nil {
		e.t.Fatalf("update: called %v, err %v", called, got)
	}
}

func (e *env) id(prefix string) string {
	e.seq++
	return fmt.Sprintf("%s%06d", prefix, e.seq)
}

func (e *env) network(name, subnet string) *api.Network {
	n := &api.Network{Id: e.id("net"), Spec: &api.NetworkSpec{Name: name, Subnet: subnet}}
	e.update(func(tx *store.Tx) error { return tx.Create(n) })
	return e.st.Network(n.Id)
}

func (e *env) service(name string, networks []string, ports ...*api.PortConfig) *api.Service {
	s := &api.Service{Id: e.id("svc"), SpecVersion: 1, Spec: &api.ServiceSpec{
		Name:     name,
		Task:     &api.TaskSpec{Container: &api.ContainerSpec{Image: name + ":1"}, Networks: networks},
		Mode:     &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}},
		Endpoint: &api.EndpointSpec{Ports: ports},
	}}
	e.update(func(tx *store.Tx) error { return tx.Create(s) })
	return s
}

// tasks creates n NEW tasks of s, in transactions of at most 5000.
func (e *env) tasks(s *api.Service, n int) []string {
	var ids []string
	for len(ids) < n {
		batch := min(5000, n-len(ids))
		var created []string
		e.update(func(tx *store.Tx) error {
			for i := 0; i < batch; i++ {
				t := &api.Task{Id: e.id("task"), ServiceId: s.Id, ServiceName: s.Spec.Name, Slot: uint64(len(ids) + i + 1),
					Spec: s.Spec.Task, SpecVersion: 1, DesiredState: api.TaskState_TASK_STATE_RUNNING,
					Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_NEW, Timestamp: tx.Timestamp()}}
				if err := tx.Create(t); err != nil {
					return err
				}
				created = append(created, t.Id)
			}
			return nil
		})
		ids = append(ids, created...)
	}
	return ids
}

func (e *env) setState(id string, st api.TaskState) {
	e.update(func(tx *store.Tx) error {
		return tx.UpdateTaskStatus(id, &api.TaskStatus{State: st, Timestamp: tx.Timestamp() + 1})
	})
}

func (e *env) deleteTask(id string) {
	e.update(func(tx *store.Tx) error { return tx.Delete(store.KindTask, id, 0) })
}

func (e *env) state(id string) api.TaskState { return e.st.Task(id).GetStatus().GetState() }

// addresses lists every live task's addresses, failing on a duplicate
// across all of them and the services' virtual IPs.
func (e *env) checkUnique() map[string]string {
	e.t.Helper()
	seen := map[string]string{}
	add := func(addr, holder string) {
		a := strings.SplitN(addr, "/", 2)[0]
		if prev, dup := seen[a]; dup {
			e.t.Fatalf("address %s held by %s and %s", a, prev, holder)
		}
		seen[a] = holder
	}
	for t := range e.st.EachTask() {
		if t.GetStatus().GetState() > api.TaskState_TASK_STATE_RUNNING {
			continue
		}
		for _, n := range t.Networks {
			add(n.Address, t.Id)
		}
	}
	for s := range e.st.EachService() {
		for _, v := range allocator.ParseVirtualIPs(s.GetEndpoint().GetVirtualIp()) {
			add(v.Addr, s.Id+" (VIP)")
		}
	}
	return seen
}

func TestNewToPending(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	svc := e.service("web", nil)
	ids := e.tasks(svc, 3)
	e.run()

	in := e.st.NetworkByName(allocator.IngressNetworkName)
	if in == nil || in.Spec.Subnet != allocator.DefaultIngressSubnet || in.Spec.Driver != allocator.IngressDriver {
		t.Fatalf("ingress network %v", in)
	}
	s := e.st.Service(svc.Id)
	vips := allocator.ParseVirtualIPs(s.GetEndpoint().GetVirtualIp())
	if len(vips) != 1 || vips[0].NetworkID != in.Id || vips[0].Addr != "10.0.0.2/12" {
		t.Fatalf("service VIPs %v (endpoint %v)", vips, s.Endpoint)
	}
	for i, id := range ids {
		task := e.st.Task(id)
		if task.Status.State != api.TaskState_TASK_STATE_PENDING || task.Status.Message != "allocated" || task.Status.Timestamp == 0 {
			t.Fatalf("task %s status %v", id, task.Status)
		}
		want := fmt.Sprintf("10.0.0.%d/12", i+3)
		if len(task.Networks) != 1 || task.Networks[0].NetworkId != in.Id || task.Networks[0].Address != want {
			t.Fatalf("task %s networks %v, want %s on ingress", id, task.Networks, want)
		}
		if task.Endpoint.GetVirtualIp() != s.Endpoint.VirtualIp {
			t.Fatalf("task endpoint %v, service %v", task.Endpoint, s.Endpoint)
		}
	}
	st := e.a.Stats()
	if st.TasksAllocated != 3 || st.Allocations != 4 || st.Waiting != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Tasks that do not want to run, or are past NEW, are not the
// allocator's business.
func TestSkipsTasksNotWaiting(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	svc := e.service("web", nil)
	e.run()
	e.update(func(tx *store.Tx) error {
		for i, st := range []struct{ desired, state api.TaskState }{
			{api.TaskState_TASK_STATE_SHUTDOWN, api.TaskState_TASK_STATE_NEW},
			{api.TaskState_TASK_STATE_RUNNING, api.TaskState_TASK_STATE_PENDING},
		} {
			if err := tx.Create(&api.Task{Id: fmt.Sprintf("t%d", i), ServiceId: svc.Id, Spec: svc.Spec.Task,
				DesiredState: st.desired, Status: &api.TaskStatus{State: st.state}}); err != nil {
				return err
			}
		}
		return nil
	})
	e.run()
	for _, id := range []string{"t0", "t1"} {
		if n := len(e.st.Task(id).Networks); n != 0 {
			t.Fatalf("task %s got %d attachments", id, n)
		}
	}
}

func TestAddressesUniqueAcross10000Tasks(t *testing.T) {
	e := newEnv(t, allocator.Config{BatchSize: 500})
	defer e.k.Activate()()
	e.a.Start()
	web := e.service("web", nil)
	api2 := e.service("api", nil)
	ids := append(e.tasks(web, 6000), e.tasks(api2, 4000)...)
	e.run()
	for _, id := range ids {
		if e.state(id) != api.TaskState_TASK_STATE_PENDING {
			t.Fatalf("task %s is %v", id, e.state(id))
		}
	}
	if got := len(e.checkUnique()); got != 10002 {
		t.Fatalf("%d distinct addresses, want 10002", got)
	}
	if st := e.a.Stats(); st.Proposals < 20 {
		t.Fatalf("10,000 tasks in %d proposals: batches of 500 expected", st.Proposals)
	}
}

// A small subnet runs out: the task left over stays NEW with a message,
// and takes the address a dead task gives back.
func TestExhaustionThenReuse(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	small := e.network("small", "10.9.0.0/29") // .2-.6: five addresses
	svc := e.service("web", []string{small.Id})
	ids := e.tasks(svc, 5) // the VIP takes one: four fit
	e.run()
	for _, id := range ids[:4] {
		if e.state(id) != api.TaskState_TASK_STATE_PENDING {
			t.Fatalf("task %s is %v", id, e.state(id))
		}
	}
	last := e.st.Task(ids[4])
	want := `pending allocation: network "small" (10.9.0.0/29) has no free address`
	if last.Status.State != api.TaskState_TASK_STATE_NEW || last.Status.Message != want {
		t.Fatalf("fifth task %v, want NEW with %q", last.Status, want)
	}
	if e.a.Stats().Failures == 0 {
		t.Fatal("no failure counted")
	}

	// A task that ends gives its address back; the waiting one takes it.
	freed := e.st.Task(ids[1]).Networks[0].Address
	e.setState(ids[1], api.TaskState_TASK_STATE_FAILED)
	e.run()
	got := e.st.Task(ids[4])
	if got.Status.State != api.TaskState_TASK_STATE_PENDING || got.Networks[0].Address != freed {
		t.Fatalf("waiting task %v %v, want PENDING with %s", got.Status, got.Networks, freed)
	}
	e.checkUnique()

	// Deletion frees too.
	more := e.tasks(svc, 1)
	e.run()
	if e.state(more[0]) != api.TaskState_TASK_STATE_NEW {
		t.Fatal("a sixth task fit in five addresses")
	}
	freed = e.st.Task(ids[2]).Networks[0].Address
	e.deleteTask(ids[2])
	e.run()
	if got := e.st.Task(more[0]); got.Status.State != api.TaskState_TASK_STATE_PENDING || got.Networks[0].Address != freed {
		t.Fatalf("task after delete %v %v, want %s", got.Status, got.Networks, freed)
	}
	e.checkUnique()
	if st := e.a.Stats(); st.Frees != 2 {
		t.Fatalf("frees %d, want 2", st.Frees)
	}
}

// A task asked to stop may still run: its address stays held until its
// status says it ended.
func TestShutdownDesiredKeepsAddress(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	svc := e.service("web", nil)
	ids := e.tasks(svc, 1)
	e.run()
	e.update(func(tx *store.Tx) error {
		c := tx.Task(ids[0]).ShallowCopy()
		c.DesiredState = api.TaskState_TASK_STATE_SHUTDOWN
		return tx.Update(c)
	})
	e.run()
	if st := e.a.Stats(); st.Frees != 0 {
		t.Fatalf("freed on desired shutdown: %+v", st)
	}
	e.setState(ids[0], api.TaskState_TASK_STATE_SHUTDOWN)
	e.run()
	if st := e.a.Stats(); st.Frees != 1 {
		t.Fatalf("frees %d after shutdown, want 1", st.Frees)
	}
}

// A new allocator on the same store (a new leader) reads every allocation
// back: nothing it hands out is held already.
func TestRebuildAfterRestart(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	web := e.service("web", nil, &api.PortConfig{TargetPort: 80}, &api.PortConfig{TargetPort: 81, PublishedPort: 8081})
	e.tasks(web, 1000)
	e.run()
	e.a.Stop()

	// Free a few in the middle while no allocator runs.
	var ended []string
	for i, task := range e.st.TasksByService(web.Id) {
		if i%100 == 0 {
			ended = append(ended, task.Id)
		}
	}
	for _, id := range ended {
		e.setState(id, api.TaskState_TASK_STATE_COMPLETE)
	}

	b := e.newAllocator(allocator.Config{})
	b.Start()
	e.run()
	other := e.service("other", nil, &api.PortConfig{TargetPort: 80})
	e.tasks(other, 1000)
	e.tasks(web, 5)
	e.run()
	if got := len(e.checkUnique()); got != 2005-len(ended)+2 {
		t.Fatalf("%d distinct addresses", got)
	}
	for t2 := range e.st.EachTask() {
		if t2.Status.State == api.TaskState_TASK_STATE_NEW {
			t.Fatalf("task %s still NEW: %s", t2.Id, t2.Status.Message)
		}
	}
	wp := e.st.Service(web.Id).Endpoint.Ports
	op := e.st.Service(other.Id).Endpoint.Ports
	if wp[0].PublishedPort == op[0].PublishedPort {
		t.Fatalf("both services publish %d", wp[0].PublishedPort)
	}
	if st := b.Stats(); st.Conflicts != 0 {
		t.Fatalf("conflicts %d", st.Conflicts)
	}
	// The freed addresses are reused only after the fresh ones: a new
	// allocator sweeps from the start of the subnet and finds them first.
	// Either way none is doubled, which checkUnique proved.
}

// Restoring a snapshot into another store (a new manager) and starting an
// allocator there gives the same guarantee.
func TestRebuildFromSnapshot(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	web := e.service("web", nil)
	e.tasks(web, 300)
	e.run()
	snap, err := e.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	e.a.Stop()

	n2 := e.k.AddNode("m2")
	st2 := store.New(n2)
	st2.SetProposer(store.NewLoopback(st2, n2))
	if err := st2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	e2 := &env{t: t, k: e.k, n: n2, st: st2, seq: e.seq}
	e2.a = e2.newAllocator(allocator.Config{})
	e2.a.Start()
	e2.tasks(e2.st.Service(web.Id), 300)
	e2.run()
	if got := len(e2.checkUnique()); got != 601 {
		t.Fatalf("%d distinct addresses, want 601", got)
	}
}

func TestVirtualIPsPerNetwork(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	front := e.network("front", "10.20.0.0/24")
	back := e.network("back", "10.21.0.0/24")
	svc := e.service("web", []string{front.Id, "back"}) // by ID or by name
	ids := e.tasks(svc, 2)
	e.run()
	s := e.st.Service(svc.Id)
	want := []allocator.VirtualIP{{NetworkID: front.Id, Addr: "10.20.0.2/24"}, {NetworkID: back.Id, Addr: "10.21.0.2/24"}}
	if got := allocator.ParseVirtualIPs(s.Endpoint.VirtualIp); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("VIPs %v, want %v", got, want)
	}
	if allocator.FormatVirtualIPs(want) != s.Endpoint.VirtualIp {
		t.Fatalf("format %q", s.Endpoint.VirtualIp)
	}
	for _, id := range ids {
		nets := e.st.Task(id).Networks
		if len(nets) != 2 || nets[0].NetworkId != front.Id || nets[1].NetworkId != back.Id {
			t.Fatalf("task networks %v", nets)
		}
	}
	e.checkUnique()

	// The service moves off "back": its VIP there goes back to the pool
	// once the new endpoint commits.
	e.update(func(tx *store.Tx) error {
		c := tx.Service(svc.Id).ShallowCopy()
		spec := proto.Clone(c.Spec.Task).(*api.TaskSpec)
		spec.Networks = []string{front.Id}
		c.Spec = &api.ServiceSpec{Name: "web", Task: spec, Mode: c.Spec.Mode}
		return tx.Update(c)
	})
	e.run()
	got := allocator.ParseVirtualIPs(e.st.Service(svc.Id).Endpoint.VirtualIp)
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("VIPs after update %v, want %v", got, want[:1])
	}
	if e.a.Stats().Frees != 1 {
		t.Fatalf("frees %d, want 1", e.a.Stats().Frees)
	}
}

func TestMissingNetworkWaits(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	svc := e.service("web", []string{"later"})
	ids := e.tasks(svc, 1)
	e.run()
	if got := e.st.Task(ids[0]).Status; got.State != api.TaskState_TASK_STATE_NEW ||
		got.Message != `pending allocation: service "web": network "later" not found` {
		t.Fatalf("status %v", got)
	}
	e.network("later", "10.30.0.0/24")
	e.run()
	if e.state(ids[0]) != api.TaskState_TASK_STATE_PENDING {
		t.Fatalf("task %v after the network appeared", e.st.Task(ids[0]).Status)
	}
}

func TestPublishedPorts(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	a := e.service("a", nil,
		&api.PortConfig{TargetPort: 80, PublishedPort: 8080},
		&api.PortConfig{TargetPort: 443},
		&api.PortConfig{TargetPort: 53, Protocol: api.PortConfig_UDP},
		&api.PortConfig{TargetPort: 9000, PublishMode: api.PortConfig_HOST})
	e.tasks(a, 1)
	e.run()
	ports := e.st.Service(a.Id).Endpoint.Ports
	if ports[0].PublishedPort != 8080 {
		t.Fatalf("explicit port %d", ports[0].PublishedPort)
	}
	for _, p := range ports[1:3] {
		if p.PublishedPort < allocator.DynamicPortStart || p.PublishedPort > allocator.DynamicPortEnd {
			t.Fatalf("dynamic port %d", p.PublishedPort)
		}
	}
	if ports[3].PublishedPort != 0 || ports[3].PublishMode != api.PortConfig_HOST {
		t.Fatalf("host port changed: %v", ports[3])
	}

	// UDP 8080 is free; TCP 8080 is a's.
	udp := e.service("udp", nil, &api.PortConfig{TargetPort: 80, PublishedPort: 8080, Protocol: api.PortConfig_UDP})
	b := e.service("b", nil, &api.PortConfig{TargetPort: 80, PublishedPort: 8080})
	bt := e.tasks(b, 2)
	e.run()
	if e.st.Service(udp.Id).Endpoint.GetPorts()[0].GetPublishedPort() != 8080 {
		t.Fatal("udp/8080 refused")
	}
	want := `pending allocation: service "b": ingress port 8080/tcp is already published by service "a"`
	for _, id := range bt {
		if st := e.st.Task(id).Status; st.State != api.TaskState_TASK_STATE_NEW || st.Message != want {
			t.Fatalf("b's task %v, want NEW with %q", st, want)
		}
	}
	if e.st.Service(b.Id).Endpoint != nil {
		t.Fatal("b got an endpoint")
	}

	// a goes away: b gets the port.
	e.update(func(tx *store.Tx) error {
		for _, task := range tx.TasksByService(a.Id) {
			if err := tx.Delete(store.KindTask, task.Id, 0); err != nil {
				return err
			}
		}
		return tx.Delete(store.KindService, a.Id, 0)
	})
	e.run()
	if p := e.st.Service(b.Id).Endpoint.GetPorts(); len(p) != 1 || p[0].PublishedPort != 8080 {
		t.Fatalf("b's ports %v", p)
	}
	for _, id := range bt {
		if e.state(id) != api.TaskState_TASK_STATE_PENDING {
			t.Fatalf("b's task %v", e.st.Task(id).Status)
		}
	}
}

// An update that keeps a dynamic port keeps its number; one that drops a
// port gives it back.
func TestPortsKeptAcrossUpdate(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	s := e.service("web", nil, &api.PortConfig{TargetPort: 80}, &api.PortConfig{TargetPort: 81})
	e.run()
	before := e.st.Service(s.Id).Endpoint.Ports
	e.update(func(tx *store.Tx) error {
		c := tx.Service(s.Id).ShallowCopy()
		c.Spec = &api.ServiceSpec{Name: "web", Task: c.Spec.Task, Mode: c.Spec.Mode,
			Endpoint: &api.EndpointSpec{Ports: []*api.PortConfig{{TargetPort: 80}}}}
		return tx.Update(c)
	})
	e.run()
	after := e.st.Service(s.Id).Endpoint.Ports
	if len(after) != 1 || after[0].PublishedPort != before[0].PublishedPort {
		t.Fatalf("ports %v -> %v", before, after)
	}
	if e.a.Stats().Frees != 1 {
		t.Fatalf("frees %d, want 1", e.a.Stats().Frees)
	}
}

func TestPortExhaustion(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	var ports []*api.PortConfig
	for i := allocator.DynamicPortStart; i <= allocator.DynamicPortEnd; i++ {
		ports = append(ports, &api.PortConfig{TargetPort: uint32(i)})
	}
	hog := e.service("hog", nil, ports...)
	late := e.service("late", nil, &api.PortConfig{TargetPort: 80})
	ids := e.tasks(late, 1)
	e.run()
	if n := len(e.st.Service(hog.Id).Endpoint.Ports); n != 2768 {
		t.Fatalf("hog has %d ports", n)
	}
	want := `pending allocation: service "late": no free ingress port left in 30000-32767 (tcp)`
	if st := e.st.Task(ids[0]).Status; st.Message != want {
		t.Fatalf("status %v, want %q", st, want)
	}
	e.update(func(tx *store.Tx) error { return tx.Delete(store.KindService, hog.Id, 0) })
	e.run()
	if e.state(ids[0]) != api.TaskState_TASK_STATE_PENDING {
		t.Fatalf("late's task %v", e.st.Task(ids[0]).Status)
	}
}

// After Stop the allocator writes nothing, even for work it had queued.
func TestStopWritesNothing(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.a.Start()
	svc := e.service("web", nil)
	e.run()
	applied := e.st.AppliedIndex()
	var ids []string
	e.st.Update(func(tx *store.Tx) error {
		for i := 0; i < 10; i++ {
			id := fmt.Sprintf("t%d", i)
			ids = append(ids, id)
			if err := tx.Create(&api.Task{Id: id, ServiceId: svc.Id, Spec: svc.Spec.Task,
				DesiredState: api.TaskState_TASK_STATE_RUNNING, Status: &api.TaskStatus{}}); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	// The create applies and the allocator posts a pass; stop before it
	// runs.
	e.k.Step()
	e.a.Stop()
	e.run()
	if e.st.AppliedIndex() != applied+1 {
		t.Fatalf("%d entries applied after stop, want only the create", e.st.AppliedIndex()-applied)
	}
	for _, id := range ids {
		if e.state(id) != api.TaskState_TASK_STATE_NEW {
			t.Fatalf("task %s moved after stop", id)
		}
	}
	// A new start picks them up.
	e.a.Start()
	e.run()
	for _, id := range ids {
		if e.state(id) != api.TaskState_TASK_STATE_PENDING {
			t.Fatalf("task %s %v after restart", id, e.st.Task(id).Status)
		}
	}
}

// A user may create the ingress network first, with their own subnet.
func TestUserIngressNetwork(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	in := e.network(allocator.IngressNetworkName, "192.168.0.0/24")
	e.a.Start()
	ids := e.tasks(e.service("web", nil), 1)
	e.run()
	addr := e.st.Task(ids[0]).Networks[0].Address
	if !netip.MustParsePrefix("192.168.0.0/24").Contains(netip.MustParsePrefix(addr).Addr()) {
		t.Fatalf("address %s not in the user's ingress", addr)
	}
	if len(e.st.Networks()) != 1 || e.st.Networks()[0].Id != in.Id {
		t.Fatal("the allocator created another ingress network")
	}
}

// The default ingress subnet moves aside for a network that overlaps it.
func TestIngressAvoidsOverlap(t *testing.T) {
	e := newEnv(t, allocator.Config{})
	defer e.k.Activate()()
	e.network("mine", "10.1.0.0/16")
	e.a.Start()
	e.run()
	if in := e.st.NetworkByName(allocator.IngressNetworkName); in == nil || in.Spec.Subnet != "10.16.0.0/12" {
		t.Fatalf("ingress %v", in)
	}
}

// One seed, one outcome: the addresses and the ingress ID replay.
func TestDeterministic(t *testing.T) {
	run := func() string {
		e := newEnv(t, allocator.Config{BatchSize: 7})
		defer e.k.Activate()()
		e.a.Start()
		svc := e.service("web", nil, &api.PortConfig{TargetPort: 80})
		ids := e.tasks(svc, 50)
		e.run()
		for _, id := range ids[:10] {
			e.setState(id, api.TaskState_TASK_STATE_FAILED)
		}
		ids = append(ids, e.tasks(svc, 20)...)
		e.run()
		var b strings.Builder
		fmt.Fprintln(&b, e.st.NetworkByName("ingress").Id, e.st.Service(svc.Id).Endpoint)
		for _, id := range ids {
			fmt.Fprintln(&b, id, e.st.Task(id).Networks)
		}
		return b.String()
	}
	if a, b := run(), run(); a != b {
		t.Fatal("two runs of one seed differ")
	}
}

// BenchmarkAllocate100kTasks: one service, 100,000 NEW tasks, from Start
// to every task PENDING, through the store's real codec and apply path
// (the store's share is most of it). cpu-ns/op is the process's CPU time,
// which a loaded machine inflates less than wall time.
func BenchmarkAllocate100kTasks(b *testing.B) {
	b.ReportAllocs()
	b.StopTimer()
	var cpu time.Duration
	for range b.N {
		e := newEnv(b, allocator.Config{})
		restore := e.k.Activate()
		svc := e.service("web", nil)
		e.tasks(svc, 100_000)
		before := cpuTime()
		b.StartTimer()
		e.a.Start()
		e.run()
		b.StopTimer()
		cpu += cpuTime() - before
		if st := e.a.Stats(); st.TasksAllocated != 100_000 {
			b.Fatalf("allocated %d", st.TasksAllocated)
		}
		restore()
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gate holds proposals back until the test lets them through, in the
// order it chooses, or fails them.
type gate struct {
	inner store.Proposer
	on    bool
	held  []heldProposal
}

type heldProposal struct {
	data []byte
	done store.Proposal
}

func (g *gate) Propose(data []byte, done store.Proposal) {
	if g.on {
		g.held = append(g.held, heldProposal{data, done})
		return
	}
	g.inner.Propose(data, done)
}

func (g *gate) take(i int) heldProposal {
	p := g.held[i]
	g.held = append(g.held[:i], g.held[i+1:]...)
	return p
}

func (g *gate) release(i int)         { p := g.take(i); g.inner.Propose(p.data, p.done) }
func (g *gate) fail(i int, err error) { p := g.take(i); p.done.Done(nil, err) }
func (g *gate) open(e *env) {
	g.on = false
	for len(g.held) > 0 {
		g.release(0)
	}
	e.run()
}
func newGatedEnv(t *testing.T) (*env, *gate) {
	e := newEnv(t, allocator.Config{})
	g := &gate{inner: store.NewLoopback(e.st, e.n)}
	e.st.SetProposer(g)
	return e, g
}

// createHeld creates n NEW tasks of svc while the gate is on, lets the
// create through and runs the loop: the allocator's proposal for them is
// then the first one held.
func (e *env) createHeld(g *gate, svc *api.Service, n int) []string {
	var ids []string
	e.st.Update(func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			id := e.id("task")
			ids = append(ids, id)
			if err := tx.Create(&api.Task{Id: id, ServiceId: svc.Id, Spec: svc.Spec.Task, DesiredState: api.TaskState_TASK_STATE_RUNNING,
				Status: &api.TaskStatus{State: api.TaskState_TASK_STATE_NEW}}); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	g.release(len(g.held) - 1)
	e.run()
	if len(g.held) != 1 {
		e.t.Fatalf("%d proposals held, want the allocator's", len(g.held))
	}
	return ids
}

// A proposal the store rejects (a concurrent change to one of its tasks)
// gives its addresses back, and the batch is retried at once.
func TestRejectedBatchRetried(t *testing.T) {
	e, g := newGatedEnv(t)
	defer e.k.Activate()()
	e.network(allocator.IngressNetworkName, "10.0.0.0/24")
	svc := e.service("web", nil)
	e.a.Start()
	e.run()

	g.on = true
	ids := e.createHeld(g, svc, 5)
	// Another writer changes a task first.
	e.st.Update(func(tx *store.Tx) error {
		c := tx.Task(ids[2]).ShallowCopy()
		c.PendingReason = "touched"
		return tx.Update(c)
	}, nil)
	g.release(1)
	g.release(0)
	e.run()
	if st := e.a.Stats(); st.Rejected != 1 || st.Frees != 5 {
		t.Fatalf("after the rejection: %+v", st)
	}
	g.open(e)
	for _, id := range ids {
		if e.state(id) != api.TaskState_TASK_STATE_PENDING {
			t.Fatalf("task %s %v", id, e.st.Task(id).Status)
		}
	}
	e.checkUnique()
	if st := e.a.Stats(); st.Allocations-st.Frees != 6 {
		t.Fatalf("%d held, want 6 (5 tasks and a VIP): %+v", st.Allocations-st.Frees, st)
	}
}

// A proposal left in doubt (the proposer failed it, but it may still
// commit) keeps its addresses: the retry reuses them, so whichever commits
// holds the same ones.
func TestInDoubtBatchKeepsAddresses(t *testing.T) {
	e, g := newGatedEnv(t)
	defer e.k.Activate()()
	e.network(allocator.IngressNetworkName, "10.0.0.0/24")
	svc := e.service("web", nil)
	e.a.Start()
	e.run()

	g.on = true
	ids := e.createHeld(g, svc, 5)
	g.fail(0, fmt.Errorf("proposal dropped"))
	e.run()
	if st := e.a.Stats(); st.Rejected != 1 || st.Frees != 0 || st.Allocations != 6 {
		t.Fatalf("after the failure: %+v", st)
	}
	if len(g.held) != 0 {
		t.Fatal("retried at once: an in-doubt failure waits for the next event")
	}
	// The next event brings the retry.
	g.on = false
	more := e.tasks(svc, 1)
	e.run()
	for _, id := range append(ids, more...) {
		if e.state(id) != api.TaskState_TASK_STATE_PENDING {
			t.Fatalf("task %s %v", id, e.st.Task(id).Status)
		}
	}
	if st := e.a.Stats(); st.Allocations != 7 {
		t.Fatalf("allocations %d, want 7: the retry reuses the held addresses", st.Allocations)
	}
	e.checkUnique()
}
