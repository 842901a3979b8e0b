package allocator

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Published ports allocated in ingress mode when a spec asks for none
// (published_port 0) come from [DynamicPortStart, DynamicPortEnd].
const (
	DynamicPortStart = 30000
	DynamicPortEnd   = 32767
)

// Config tunes the allocator. Zero values take the defaults.
type Config struct {
	// BatchSize bounds the tasks one proposal moves to PENDING (default
	// 1000: a few hundred KiB per entry).
	BatchSize int
	// MaxInFlight bounds the task proposals waiting for commit at once
	// (default 4), so that a burst of 100,000 tasks becomes a pipeline of
	// entries instead of one giant one or a queue of thousands.
	MaxInFlight int
}

func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	return c
}

// Deps is what the allocator needs from its node.
type Deps struct {
	Store *store.Store
	Loop  env.Loop
	// Rand draws the ID of the ingress network when the allocator creates
	// it.
	Rand   env.Rand
	Log    *slog.Logger // nil: discard
	Config Config
}

// Stats are counters for metrics and tests.
type Stats struct {
	// Allocations counts addresses, virtual IPs and published ports handed
	// out; Frees counts those given back.
	Allocations, Frees uint64
	// Failures counts attempts to allocate a task or a service that failed
	// (pool exhausted, port taken, network missing).
	Failures uint64
	// Conflicts counts resources the store records for two holders, found
	// while reading allocations back (after Start, or written by another
	// writer). It stays 0 unless something outside the allocator breaks the
	// one-holder rule.
	Conflicts uint64
	// TasksAllocated counts tasks this allocator moved NEW -> PENDING.
	TasksAllocated uint64
	// Proposals counts transactions proposed; Rejected those that failed
	// (rejected on apply, or left in doubt by the proposer).
	Proposals, Rejected uint64
	// Waiting is the number of tasks queued or waiting for a resource now.
	Waiting int
}

// Allocator is the leader's allocator. It runs on the node's loop.
type Allocator struct {
	st    *store.Store
	loop  env.Loop
	rand  env.Rand
	log   *slog.Logger
	cfg   Config
	stats Stats

	running     bool
	epoch       uint64 // bumped by Start, Stop and rebuilds; stale callbacks compare it
	cancelWatch func()
	scheduled   bool // a pass is posted

	networks map[string]*network // by ID
	ports    [2]*pool            // by api.PortConfig_Protocol
	portSvc  map[portRes]string  // published ingress port -> service ID holding it

	// Resources held, by task and by service: everything committed in the
	// store for them plus what proposals in flight (or in doubt) carry.
	// A resource is given back only when its holder dies or is deleted,
	// or when a rejected proposal proves it was never committed.
	tasks    map[string][]addrRes
	services map[string]*svcRes

	// Work. Task and service IDs wait in FIFO queues or, when a resource
	// they need is missing, under that resource's key until it is freed or
	// created. The state maps say where an ID is, so it is never in two
	// places, and stale queue entries are skipped.
	tq, sq         fifo
	tstate, sstate map[string]uint8
	waitT, waitS   map[string][]string // resource key -> IDs
	woken          []string            // keys freed since the last pass, in order
	wokenSet       map[string]bool
	blockedWhy     map[string]string // service ID -> why its endpoint cannot be allocated

	taskInflight    int // task proposals in flight
	creatingIngress bool
	batchSize       int
}

const (
	stQueued uint8 = iota + 1
	stWaiting
	stInflight
)

type addrRes struct {
	net *network
	off int
}

type portRes struct {
	proto api.PortConfig_Protocol
	port  uint32
}

type svcRes struct {
	vips  []addrRes
	ports []portRes
}

// fifo is a queue of IDs.
type fifo struct {
	q    []string
	head int
}

func (f *fifo) push(id string) { f.q = append(f.q, id) }
func (f *fifo) len() int       { return len(f.q) - f.head }
func (f *fifo) pop() string {
	id := f.q[f.head]
	f.q[f.head] = ""
	f.head++
	if f.head == len(f.q) {
		f.q, f.head = f.q[:0], 0
	} else if f.head > 1024 && f.head*2 > len(f.q) {
		n := copy(f.q, f.q[f.head:])
		f.q, f.head = f.q[:n], 0
	}
	return id
}

// New returns a stopped allocator.
func New(d Deps) *Allocator {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := d.Config.withDefaults()
	return &Allocator{st: d.Store, loop: d.Loop, rand: d.Rand, log: log.With("subsystem", "allocator"), cfg: cfg, batchSize: cfg.BatchSize}
}

// Start begins allocating: the node became leader. It rebuilds the pools
// from the store, which must already hold every entry committed before
// this leader's term (engine/raft reports leadership only then), so that
// no allocation made by an earlier leader is handed out again.
func (a *Allocator) Start() {
	if a.running {
		return
	}
	a.running = true
	a.cancelWatch = a.st.WatchKinds(store.KindSetOf(store.KindTask, store.KindService, store.KindNetwork), a.onEvents)
	a.rebuild()
	a.kick()
}

// Stop ends allocating: leadership lost, or shutdown. No write starts
// after it, and callbacks of writes in flight are ignored.
func (a *Allocator) Stop() {
	if !a.running {
		return
	}
	a.running = false
	a.epoch++
	if a.cancelWatch != nil {
		a.cancelWatch()
		a.cancelWatch = nil
	}
	a.reset()
}

// Stats returns the allocator's counters.
func (a *Allocator) Stats() Stats {
	s := a.stats
	s.Waiting = len(a.tstate)
	return s
}

func (a *Allocator) reset() {
	a.epoch++
	a.networks = map[string]*network{}
	a.ports = [2]*pool{
		newPool(1<<16, DynamicPortStart, DynamicPortEnd+1),
		newPool(1<<16, DynamicPortStart, DynamicPortEnd+1),
	}
	a.portSvc = map[portRes]string{}
	a.tasks = map[string][]addrRes{}
	a.services = map[string]*svcRes{}
	a.tq, a.sq = fifo{}, fifo{}
	a.tstate, a.sstate = map[string]uint8{}, map[string]uint8{}
	a.waitT, a.waitS = map[string][]string{}, map[string][]string{}
	a.woken, a.wokenSet = nil, map[string]bool{}
	a.blockedWhy = map[string]string{}
	a.taskInflight = 0
	a.creatingIngress = false
	a.scheduled = false
}

// rebuild derives every pool from the store: the allocations are recorded
// in the objects (task networks, service endpoints).
func (a *Allocator) rebuild() {
	a.reset()
	for _, n := range a.st.Networks() {
		a.addNetwork(n)
	}
	for s := range a.st.EachService() {
		a.adoptService(s)
		a.enqueueService(s)
	}
	for t := range a.st.EachTask() {
		if !released(t) && len(t.Networks) > 0 {
			a.syncTask(t)
		}
		if wantsAllocation(t) {
			a.enqueueTask(t.Id)
		}
	}
}

// released: the task's container is gone for good, so its addresses can
// go to another task. A task that is only asked to stop (desired_state
// SHUTDOWN) may still be running and keeps them.
func released(t *api.Task) bool {
	return t.GetStatus().GetState() > api.TaskState_TASK_STATE_RUNNING
}

// wantsAllocation: the task waits for the allocator.
func wantsAllocation(t *api.Task) bool {
	return t.GetStatus().GetState() == api.TaskState_TASK_STATE_NEW &&
		t.DesiredState <= api.TaskState_TASK_STATE_RUNNING
}

// ------------------------------------------------------------- the watch

func (a *Allocator) onEvents(evs []store.Event) {
	if !a.running {
		return
	}
	for _, e := range evs {
		switch {
		case e.Action == store.ActionRestore:
			a.rebuild()
		case e.Kind == store.KindTask:
			a.onTask(e)
		case e.Kind == store.KindService:
			a.onService(e)
		case e.Kind == store.KindNetwork:
			a.onNetwork(e)
		}
	}
	if a.tq.len() > 0 || a.sq.len() > 0 || len(a.woken) > 0 {
		a.kick()
	}
}

func (a *Allocator) onTask(e store.Event) {
	if e.Action == store.ActionDelete {
		a.releaseTask(e.ID)
		delete(a.tstate, e.ID)
		return
	}
	t := e.New.(*api.Task)
	if released(t) {
		a.releaseTask(t.Id)
		if a.tstate[t.Id] != stInflight {
			delete(a.tstate, t.Id)
		}
		return
	}
	// Networks are set once, when the task is allocated: compare with
	// what is held only then, not on every status report.
	if len(t.Networks) > 0 {
		if old, _ := e.Old.(*api.Task); old == nil || len(old.Networks) == 0 {
			a.syncTask(t)
		}
	}
	if wantsAllocation(t) {
		a.enqueueTask(t.Id)
	}
}

func (a *Allocator) onService(e store.Event) {
	if e.Action == store.ActionDelete {
		a.releaseService(e.ID)
		delete(a.sstate, e.ID)
		delete(a.blockedWhy, e.ID)
		a.wake("svc:" + e.ID) // its waiting tasks are dropped when looked at
		return
	}
	s := e.New.(*api.Service)
	a.adoptService(s)
	if a.sstate[s.Id] == stWaiting {
		delete(a.sstate, s.Id) // its spec may no longer need what it waited for
	}
	a.enqueueService(s)
}

func (a *Allocator) onNetwork(e store.Event) {
	if e.Action == store.ActionDelete {
		if n := a.networks[e.ID]; n != nil {
			n.pool = nil // resources still held on it are dropped with it
			delete(a.networks, e.ID)
		}
		return
	}
	n := e.New.(*api.Network)
	if _, ok := a.networks[n.Id]; ok {
		return // networks do not change their subnet
	}
	a.addNetwork(n)
	a.wake("net:" + n.Id)
	a.wake("net:" + n.GetSpec().GetName())
}

func (a *Allocator) addNetwork(n *api.Network) {
	nw, err := newNetwork(n)
	if err != nil {
		a.log.Error("network cannot be allocated from", "network", n.Id, "err", err)
		return
	}
	a.networks[n.Id] = nw
}

// ----------------------------------------------------- queues and waking

func (a *Allocator) enqueueTask(id string) {
	if a.tstate[id] != 0 {
		return
	}
	a.tstate[id] = stQueued
	a.tq.push(id)
}

// enqueueService queues a service whose endpoint does not match its spec.
func (a *Allocator) enqueueService(s *api.Service) {
	if a.sstate[s.Id] != 0 || a.serviceCurrent(s) {
		return
	}
	a.sstate[s.Id] = stQueued
	a.sq.push(s.Id)
}

func (a *Allocator) waitTask(id, key string) {
	a.tstate[id] = stWaiting
	a.waitT[key] = append(a.waitT[key], id)
}

func (a *Allocator) waitService(id, key string) {
	a.sstate[id] = stWaiting
	a.waitS[key] = append(a.waitS[key], id)
}

// wake marks a resource as available again: what waits on it is queued
// at the next pass.
func (a *Allocator) wake(key string) {
	if a.wokenSet[key] {
		return
	}
	if len(a.waitT[key]) == 0 && len(a.waitS[key]) == 0 {
		return
	}
	a.wokenSet[key] = true
	a.woken = append(a.woken, key)
}

func (a *Allocator) requeueWoken() {
	for _, key := range a.woken {
		for _, id := range a.waitS[key] {
			if a.sstate[id] == stWaiting {
				delete(a.sstate, id)
				if s := a.st.Service(id); s != nil {
					a.enqueueService(s)
				}
			}
		}
		for _, id := range a.waitT[key] {
			if a.tstate[id] == stWaiting {
				delete(a.tstate, id)
				a.enqueueTask(id)
			}
		}
		delete(a.waitS, key)
		delete(a.waitT, key)
	}
	a.woken = a.woken[:0]
	clear(a.wokenSet)
}

// kick posts a pass unless one is posted already.
func (a *Allocator) kick() {
	if a.scheduled || !a.running {
		return
	}
	a.scheduled = true
	epoch := a.epoch
	a.loop.Post(func() {
		if a.epoch != epoch {
			return
		}
		a.scheduled = false
		a.pass()
	})
}

// pass does the work queued: it creates the ingress network if needed,
// allocates service endpoints, then proposes batches of tasks while fewer
// than MaxInFlight are waiting for commit.
func (a *Allocator) pass() {
	if !a.running {
		return
	}
	a.requeueWoken()
	a.ensureIngress()
	for a.sq.len() > 0 {
		id := a.sq.pop()
		if a.sstate[id] != stQueued {
			continue
		}
		delete(a.sstate, id)
		a.allocateService(id)
	}
	// While the ingress network is being created most tasks would only
	// be parked to wait for it: its creation event brings the next pass.
	for !a.creatingIngress && a.tq.len() > 0 && a.taskInflight < a.cfg.MaxInFlight {
		a.allocateTasks()
	}
	// Tasks may have queued their service, and releases may have woken
	// waiters: both wait for the next pass.
	if a.sq.len() > 0 || len(a.woken) > 0 {
		a.kick()
	}
}

// --------------------------------------------------------------- ingress

func (a *Allocator) ingress() *network {
	n := a.st.NetworkByName(IngressNetworkName)
	if n == nil {
		return nil
	}
	return a.networks[n.Id]
}

// ensureIngress creates the default network when no network is named
// IngressNetworkName, with the first candidate subnet that overlaps no
// other network.
func (a *Allocator) ensureIngress() {
	if a.creatingIngress || a.st.NetworkByName(IngressNetworkName) != nil {
		return
	}
	subnet := ""
	for _, c := range ingressCandidates {
		p := netip.MustParsePrefix(c)
		overlaps := false
		for _, n := range a.networks {
			if n.prefix.Overlaps(p) {
				overlaps = true
				break
			}
		}
		if !overlaps {
			subnet = c
			break
		}
	}
	if subnet == "" {
		a.log.Error("no free subnet for the ingress network")
		return
	}
	nw := &api.Network{Id: api.NewID(a.rand), Spec: &api.NetworkSpec{Name: IngressNetworkName, Driver: IngressDriver, Subnet: subnet}}
	a.creatingIngress = true
	a.stats.Proposals++
	epoch := a.epoch
	a.st.Update(func(tx *store.Tx) error {
		if tx.NetworkByName(IngressNetworkName) != nil {
			return nil
		}
		return tx.Create(nw)
	}, func(err error) {
		if a.epoch != epoch {
			return
		}
		a.creatingIngress = false
		if err != nil {
			// A retry waits for the next event: without a clock there is
			// no backoff, and an immediate retry could spin the loop.
			a.stats.Rejected++
			a.log.Warn("creating the ingress network failed", "err", err)
		}
	})
}

// ------------------------------------------------------------ services

// serviceNetworks lists the networks a service's tasks attach to, in
// order: the spec's, or the ingress network when it names none, with the
// ingress network first when the service publishes ports in ingress mode.
// It returns the key of a missing network.
func (a *Allocator) serviceNetworks(spec *api.ServiceSpec) ([]*network, string) {
	return a.resolveNetworks(spec.GetTask().GetNetworks(), publishesIngress(spec))
}

func publishesIngress(spec *api.ServiceSpec) bool {
	for _, p := range spec.GetEndpoint().GetPorts() {
		if p.GetPublishMode() == api.PortConfig_INGRESS {
			return true
		}
	}
	return false
}

func (a *Allocator) resolveNetworks(refs []string, withIngress bool) ([]*network, string) {
	out := make([]*network, 0, len(refs)+1)
	if len(refs) == 0 || withIngress {
		in := a.ingress()
		if in == nil {
			return nil, "net:" + IngressNetworkName
		}
		out = append(out, in)
	}
	for _, ref := range refs {
		n := a.networks[ref]
		if n == nil {
			if byName := a.st.NetworkByName(ref); byName != nil {
				n = a.networks[byName.Id]
			}
		}
		if n == nil {
			return nil, "net:" + ref
		}
		if len(out) > 0 && out[0] == n {
			continue // ingress named explicitly as well
		}
		out = append(out, n)
	}
	return out, ""
}

// serviceCurrent reports whether a service's endpoint holds what its spec
// asks for: a virtual IP on each of its networks, and every ingress port
// published.
func (a *Allocator) serviceCurrent(s *api.Service) bool {
	nets, missing := a.serviceNetworks(s.GetSpec())
	if missing != "" {
		return false
	}
	vips := ParseVirtualIPs(s.GetEndpoint().GetVirtualIp())
	if len(vips) != len(nets) {
		return false
	}
	for i, v := range vips {
		if v.NetworkID != nets[i].id {
			return false
		}
	}
	want, have := s.GetSpec().GetEndpoint().GetPorts(), s.GetEndpoint().GetPorts()
	if len(want) != len(have) {
		return false
	}
	for i, w := range want {
		h := have[i]
		if h.GetName() != w.GetName() || h.GetProtocol() != w.GetProtocol() || h.GetTargetPort() != w.GetTargetPort() ||
			h.GetPublishMode() != w.GetPublishMode() {
			return false
		}
		switch {
		case w.GetPublishMode() == api.PortConfig_INGRESS && w.GetPublishedPort() == 0:
			if h.GetPublishedPort() == 0 {
				return false
			}
		case h.GetPublishedPort() != w.GetPublishedPort():
			return false
		}
	}
	return true
}

// missingNetwork is the message for a network that is not found, or ""
// while the allocator is creating it (nothing for a user to fix).
func (a *Allocator) missingNetwork(key, prefix string) string {
	ref := key[len("net:"):]
	if ref == IngressNetworkName && a.creatingIngress {
		return ""
	}
	return fmt.Sprintf("%snetwork %q not found", prefix, ref)
}

// allocError says why a task or service could not be allocated, and the
// resource whose release or creation may change that.
type allocError struct {
	key, msg string
}

func (a *Allocator) allocateService(id string) {
	s := a.st.Service(id)
	if s == nil || s.PendingDelete {
		return
	}
	if a.serviceCurrent(s) {
		delete(a.blockedWhy, id)
		a.wake("svc:" + id)
		return
	}
	ep, aerr := a.buildEndpoint(s)
	if aerr != nil {
		a.stats.Failures++
		if aerr.msg != "" && a.blockedWhy[id] != aerr.msg {
			a.log.Warn("service endpoint cannot be allocated", "service", s.GetSpec().GetName(), "reason", aerr.msg)
		}
		a.blockedWhy[id] = aerr.msg
		a.waitService(id, aerr.key)
		a.wake("svc:" + id) // its waiting tasks record why
		return
	}
	delete(a.blockedWhy, id)
	c := s.ShallowCopy()
	c.Endpoint = ep
	a.sstate[id] = stInflight
	a.stats.Proposals++
	epoch := a.epoch
	a.st.Update(func(tx *store.Tx) error { return tx.Update(c) }, func(err error) {
		if a.epoch != epoch {
			return
		}
		delete(a.sstate, id)
		switch {
		case err == nil:
			a.trimService(id, ep)
			a.wake("svc:" + id)
		case rejected(err):
			a.stats.Rejected++
			cur := a.st.Service(id)
			if cur == nil {
				a.releaseService(id)
				return
			}
			a.trimService(id, cur.Endpoint)
			a.enqueueService(cur)
			if !retryNow(err) {
				return
			}
		default:
			// In doubt: the update may still commit, so everything it
			// carries stays held; the next attempt reuses it.
			a.stats.Rejected++
			if cur := a.st.Service(id); cur != nil {
				a.enqueueService(cur)
			}
			return
		}
		a.kick()
	})
}

// buildEndpoint computes the endpoint a service's spec asks for, reusing
// what the service holds and allocating the rest. On failure it gives back
// what it allocated.
func (a *Allocator) buildEndpoint(s *api.Service) (*api.Endpoint, *allocError) {
	nets, missing := a.serviceNetworks(s.GetSpec())
	if missing != "" {
		return nil, &allocError{missing, a.missingNetwork(missing, "")}
	}
	h := a.services[s.Id]
	if h == nil {
		h = &svcRes{}
		a.services[s.Id] = h
	}
	var addedVIPs []addrRes
	var addedPorts []portRes
	fail := func(key, format string, args ...any) (*api.Endpoint, *allocError) {
		for _, r := range addedVIPs {
			h.vips = removeAddr(h.vips, r)
			a.releaseAddr(r)
		}
		for _, r := range addedPorts {
			h.ports = removePort(h.ports, r)
			a.releasePort(r)
		}
		return nil, &allocError{key, fmt.Sprintf(format, args...)}
	}

	vips := make([]VirtualIP, 0, len(nets))
	for _, n := range nets {
		r, ok := addrOn(h.vips, n)
		if !ok {
			off := n.pool.alloc()
			if off < 0 {
				return fail("net:"+n.id, "network %q (%s) has no free address for a virtual IP", n.name, n.prefix)
			}
			a.stats.Allocations++
			r = addrRes{n, off}
			h.vips = append(h.vips, r)
			addedVIPs = append(addedVIPs, r)
		}
		vips = append(vips, VirtualIP{NetworkID: n.id, Addr: n.addr(r.off)})
	}

	spec := s.GetSpec().GetEndpoint().GetPorts()
	ports := make([]*api.PortConfig, len(spec))
	claimed := map[portRes]bool{}
	// Ports the spec names first, so that a dynamic port kept from before
	// never takes one the spec now asks for explicitly.
	for i, p := range spec {
		if p.PublishMode == api.PortConfig_HOST {
			ports[i] = p // published on the node: the scheduler's business
			continue
		}
		if p.PublishedPort == 0 {
			continue
		}
		k := portRes{p.Protocol, p.PublishedPort}
		if !hasPort(h.ports, k) {
			if !a.ports[p.Protocol].reserve(int(p.PublishedPort)) {
				owner := a.portSvc[k]
				ownerName := owner
				if o := a.st.Service(owner); o != nil {
					ownerName = o.GetSpec().GetName()
				}
				return fail("ports", "ingress port %s is already published by service %q",
					api.PortString(p.PublishedPort, p.Protocol), ownerName)
			}
			a.stats.Allocations++
			a.portSvc[k] = s.Id
			h.ports = append(h.ports, k)
			addedPorts = append(addedPorts, k)
		}
		claimed[k] = true
		ports[i] = p
	}
	old := s.GetEndpoint().GetPorts()
	for i, p := range spec {
		if p.PublishMode != api.PortConfig_INGRESS || p.PublishedPort != 0 {
			continue
		}
		var k portRes
		found := false
		if i < len(old) {
			o := old[i]
			k = portRes{p.Protocol, o.GetPublishedPort()}
			found = o.GetProtocol() == p.Protocol && o.GetTargetPort() == p.TargetPort &&
				o.GetPublishMode() == api.PortConfig_INGRESS &&
				k.port >= DynamicPortStart && k.port <= DynamicPortEnd &&
				hasPort(h.ports, k) && !claimed[k]
		}
		if !found {
			port := a.ports[p.Protocol].alloc()
			if port < 0 {
				return fail("ports", "no free ingress port left in %d-%d (%s)", DynamicPortStart, DynamicPortEnd,
					protocolName(p.Protocol))
			}
			a.stats.Allocations++
			k = portRes{p.Protocol, uint32(port)}
			a.portSvc[k] = s.Id
			h.ports = append(h.ports, k)
			addedPorts = append(addedPorts, k)
		}
		claimed[k] = true
		ports[i] = &api.PortConfig{Name: p.Name, Protocol: p.Protocol, TargetPort: p.TargetPort,
			PublishedPort: k.port, PublishMode: p.PublishMode}
	}
	return &api.Endpoint{VirtualIp: FormatVirtualIPs(vips), Ports: ports}, nil
}

// adoptService takes into the pools what a stored service's endpoint
// holds (after Start, or when another writer set it).
func (a *Allocator) adoptService(s *api.Service) {
	ep := s.GetEndpoint()
	if ep == nil {
		return
	}
	h := a.services[s.Id]
	if h == nil {
		h = &svcRes{}
		a.services[s.Id] = h
	}
	for _, v := range ParseVirtualIPs(ep.VirtualIp) {
		n := a.networks[v.NetworkID]
		if n == nil {
			continue // the network is gone, and its pool with it
		}
		off, err := n.offset(v.Addr)
		if err != nil {
			a.stats.Conflicts++
			a.log.Error("service virtual IP is not in its network", "service", s.Id, "err", err)
			continue
		}
		r := addrRes{n, off}
		if _, held := addrOn(h.vips, n); held {
			continue
		}
		if !n.pool.reserve(off) {
			a.stats.Conflicts++
			a.log.Error("virtual IP is held twice", "service", s.Id, "address", v.Addr)
			continue
		}
		h.vips = append(h.vips, r)
	}
	for _, p := range ep.Ports {
		if p.PublishMode != api.PortConfig_INGRESS || p.PublishedPort == 0 || p.Protocol > api.PortConfig_UDP {
			continue
		}
		k := portRes{p.Protocol, p.PublishedPort}
		if hasPort(h.ports, k) {
			continue
		}
		if !a.ports[p.Protocol].reserve(int(p.PublishedPort)) {
			a.stats.Conflicts++
			a.log.Error("ingress port is published twice", "service", s.Id, "port", api.PortString(k.port, k.proto), "holder", a.portSvc[k])
			continue
		}
		a.portSvc[k] = s.Id
		h.ports = append(h.ports, k)
	}
}

// trimService gives back what a service holds beyond endpoint ep, the one
// committed.
func (a *Allocator) trimService(id string, ep *api.Endpoint) {
	h := a.services[id]
	if h == nil {
		return
	}
	keepVIP := map[addrRes]bool{}
	for _, v := range ParseVirtualIPs(ep.GetVirtualIp()) {
		if n := a.networks[v.NetworkID]; n != nil {
			if off, err := n.offset(v.Addr); err == nil {
				keepVIP[addrRes{n, off}] = true
			}
		}
	}
	keepPort := map[portRes]bool{}
	for _, p := range ep.GetPorts() {
		if p.PublishMode == api.PortConfig_INGRESS {
			keepPort[portRes{p.Protocol, p.PublishedPort}] = true
		}
	}
	vips := h.vips[:0]
	for _, r := range h.vips {
		if keepVIP[r] {
			vips = append(vips, r)
		} else {
			a.releaseAddr(r)
		}
	}
	h.vips = vips
	ports := h.ports[:0]
	for _, k := range h.ports {
		if keepPort[k] {
			ports = append(ports, k)
		} else {
			a.releasePort(k)
		}
	}
	h.ports = ports
}

func (a *Allocator) releaseService(id string) {
	h := a.services[id]
	if h == nil {
		return
	}
	delete(a.services, id)
	for _, r := range h.vips {
		a.releaseAddr(r)
	}
	for _, k := range h.ports {
		a.releasePort(k)
	}
}

// --------------------------------------------------------------- tasks

type taskWork struct {
	t     *api.Task
	addrs []addrRes
	ep    *api.Endpoint
}

type taskNote struct {
	id, msg string
}

// allocateTasks takes up to BatchSize queued tasks, allocates what each
// needs and proposes them as PENDING in one transaction. Tasks that cannot
// be allocated wait for the resource they lack, with a status message
// saying so.
func (a *Allocator) allocateTasks() {
	var work []taskWork
	var notes []taskNote
	ready := map[string]*api.Service{} // services known current in this batch
	for a.tq.len() > 0 && len(work)+len(notes) < a.batchSize {
		id := a.tq.pop()
		if a.tstate[id] != stQueued {
			continue
		}
		delete(a.tstate, id)
		t := a.st.Task(id)
		if t == nil || !wantsAllocation(t) {
			continue
		}
		w, aerr := a.prepareTask(t, ready)
		if aerr != nil {
			a.stats.Failures++
			a.waitTask(id, aerr.key)
			if aerr.msg != "" && t.GetStatus().GetMessage() != aerr.msg {
				notes = append(notes, taskNote{id, aerr.msg})
			}
			continue
		}
		if w.t == nil {
			continue // dropped
		}
		a.tstate[id] = stInflight
		work = append(work, w)
	}
	if len(work) == 0 && len(notes) == 0 {
		return
	}
	a.taskInflight++
	a.stats.Proposals++
	epoch := a.epoch
	a.st.Update(func(tx *store.Tx) error {
		ts := tx.Timestamp()
		for _, w := range work {
			c := w.t.ShallowCopy()
			nets := make([]*api.NetworkAttachment, len(w.addrs))
			for i, r := range w.addrs {
				nets[i] = &api.NetworkAttachment{NetworkId: r.net.id, Address: r.net.addr(r.off)}
			}
			c.Networks = nets
			c.Endpoint = w.ep
			c.Status = &api.TaskStatus{State: api.TaskState_TASK_STATE_PENDING, Timestamp: ts, Message: "allocated"}
			if err := tx.Update(c); err != nil {
				return err
			}
		}
		for _, n := range notes {
			st := &api.TaskStatus{State: api.TaskState_TASK_STATE_NEW, Timestamp: ts, Message: n.msg}
			if err := tx.UpdateTaskStatus(n.id, st); err != nil && !errors.Is(err, store.ErrStatusRegression) {
				return err
			}
		}
		return nil
	}, func(err error) {
		if a.epoch != epoch {
			return
		}
		a.taskInflight--
		a.tasksDone(work, err)
		if err == nil || retryNow(err) {
			a.kick()
		}
	})
}

// prepareTask allocates what one task needs. A zero taskWork with no
// error drops the task (its service is gone).
func (a *Allocator) prepareTask(t *api.Task, ready map[string]*api.Service) (taskWork, *allocError) {
	var svc *api.Service
	if t.ServiceId != "" {
		svc = ready[t.ServiceId]
		if svc == nil {
			svc = a.st.Service(t.ServiceId)
			if svc == nil {
				return taskWork{}, nil // orphaned: the orchestrator removes it
			}
			if svc.PendingDelete {
				return taskWork{}, nil
			}
			if !a.serviceCurrent(svc) {
				msg := ""
				if why := a.blockedWhy[svc.Id]; why != "" {
					msg = fmt.Sprintf("pending allocation: service %q: %s", svc.GetSpec().GetName(), why)
				}
				if a.sstate[svc.Id] == 0 {
					a.enqueueService(svc)
				}
				return taskWork{}, &allocError{"svc:" + svc.Id, msg}
			}
			ready[svc.Id] = svc
		}
	}
	var nets []*network
	var missing string
	if svc != nil {
		nets, missing = a.resolveNetworks(t.GetSpec().GetNetworks(), publishesIngress(svc.GetSpec()))
	} else {
		nets, missing = a.resolveNetworks(t.GetSpec().GetNetworks(), false)
	}
	if missing != "" {
		return taskWork{}, &allocError{missing, a.missingNetwork(missing, "pending allocation: ")}
	}
	addrs, aerr := a.allocAddrs(t.Id, nets)
	if aerr != nil {
		return taskWork{}, aerr
	}
	return taskWork{t: t, addrs: addrs, ep: svc.GetEndpoint()}, nil
}

// allocAddrs gives a task an address on each network, reusing what it
// holds already (from a proposal left in doubt, or read from the store).
func (a *Allocator) allocAddrs(id string, nets []*network) ([]addrRes, *allocError) {
	held := a.tasks[id]
	out := make([]addrRes, 0, len(nets))
	for _, n := range nets {
		if r, ok := addrOn(held, n); ok {
			out = append(out, r)
			continue
		}
		off := n.pool.alloc()
		if off < 0 {
			for _, r := range out {
				if _, was := addrOn(held, r.net); !was {
					a.releaseAddr(r)
				}
			}
			return nil, &allocError{"net:" + n.id,
				fmt.Sprintf("pending allocation: network %q (%s) has no free address", n.name, n.prefix)}
		}
		a.stats.Allocations++
		out = append(out, addrRes{n, off})
	}
	for _, r := range held {
		if _, kept := addrOn(out, r.net); !kept {
			a.releaseAddr(r)
		}
	}
	a.tasks[id] = out
	return out, nil
}

func (a *Allocator) tasksDone(work []taskWork, err error) {
	if err == nil {
		for _, w := range work {
			if a.tstate[w.t.Id] == stInflight {
				delete(a.tstate, w.t.Id)
			}
		}
		a.stats.TasksAllocated += uint64(len(work))
		return
	}
	a.stats.Rejected++
	if errors.Is(err, store.ErrProposalTooLarge) && a.batchSize > 1 {
		a.batchSize /= 2
		a.log.Warn("task batch too large; halving it", "batch", a.batchSize)
	}
	isRejected := rejected(err)
	if !isRejected {
		a.log.Warn("task allocations in doubt; retrying", "tasks", len(work), "err", err)
	}
	for _, w := range work {
		id := w.t.Id
		if a.tstate[id] == stInflight {
			delete(a.tstate, id)
		}
		cur := a.st.Task(id)
		if isRejected {
			// Not committed: the task holds what the store says, if
			// anything, and gives the rest back.
			if cur == nil || released(cur) {
				a.releaseTask(id)
			} else {
				a.syncTask(cur)
			}
		}
		if cur != nil && wantsAllocation(cur) {
			a.enqueueTask(id)
		}
	}
}

// syncTask makes what a task holds equal to what the store records for
// it: addresses read back are reserved, held ones the store does not show
// are given back. Used after Start, when a task's networks appear, and
// after a rejected proposal.
func (a *Allocator) syncTask(t *api.Task) {
	held := a.tasks[t.Id]
	out := make([]addrRes, 0, len(t.Networks))
	for _, att := range t.Networks {
		n := a.networks[att.GetNetworkId()]
		if n == nil {
			continue // the network is gone, and its pool with it
		}
		off, err := n.offset(att.GetAddress())
		if err != nil {
			a.stats.Conflicts++
			a.log.Error("task address is not in its network", "task", t.Id, "err", err)
			continue
		}
		r := addrRes{n, off}
		if slices.Contains(held, r) {
			out = append(out, r)
			continue
		}
		if !n.pool.reserve(off) {
			a.stats.Conflicts++
			a.log.Error("address is held twice", "task", t.Id, "network", n.name, "address", att.GetAddress())
			continue
		}
		out = append(out, r)
	}
	for _, r := range held {
		if !slices.Contains(out, r) {
			a.releaseAddr(r)
		}
	}
	if len(out) == 0 {
		delete(a.tasks, t.Id)
		return
	}
	a.tasks[t.Id] = out
}

func (a *Allocator) releaseTask(id string) {
	held, ok := a.tasks[id]
	if !ok {
		return
	}
	delete(a.tasks, id)
	for _, r := range held {
		a.releaseAddr(r)
	}
}

// ------------------------------------------------------------- helpers

func (a *Allocator) releaseAddr(r addrRes) {
	if r.net.pool == nil || !r.net.pool.release(r.off) {
		return
	}
	a.stats.Frees++
	a.wake("net:" + r.net.id)
}

func (a *Allocator) releasePort(k portRes) {
	if !a.ports[k.proto].release(int(k.port)) {
		return
	}
	a.stats.Frees++
	delete(a.portSvc, k)
	a.wake("ports")
}

// rejected reports whether err proves a proposal was not applied (the
// store refused it, or it was never proposed), as opposed to leaving it in
// doubt (a proposer error: it may still commit).
func rejected(err error) bool {
	for _, s := range []error{store.ErrSequenceConflict, store.ErrNotExist, store.ErrExist, store.ErrNameConflict,
		store.ErrInvalid, store.ErrStatusRegression, store.ErrNotPending, store.ErrNodeUnavailable,
		store.ErrNoProposer, store.ErrProposalTooLarge, store.ErrTxClosed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// retryNow reports whether a failed proposal should be retried at once:
// a concurrent change made it stale, and a retry reads the store anew.
// Other failures wait for the next event, since retrying what failed for
// a reason that has not changed would spin the loop without letting time
// pass.
func retryNow(err error) bool {
	return errors.Is(err, store.ErrSequenceConflict) || errors.Is(err, store.ErrNotExist) ||
		errors.Is(err, store.ErrExist) || errors.Is(err, store.ErrNameConflict) ||
		errors.Is(err, store.ErrProposalTooLarge)
}

func protocolName(p api.PortConfig_Protocol) string {
	if p == api.PortConfig_UDP {
		return "udp"
	}
	return "tcp"
}

func addrOn(rs []addrRes, n *network) (addrRes, bool) {
	for _, r := range rs {
		if r.net == n {
			return r, true
		}
	}
	return addrRes{}, false
}

func removeAddr(rs []addrRes, x addrRes) []addrRes {
	for i, r := range rs {
		if r == x {
			return append(rs[:i], rs[i+1:]...)
		}
	}
	return rs
}

func hasPort(ps []portRes, k portRes) bool {
	for _, p := range ps {
		if p == k {
			return true
		}
	}
	return false
}

func removePort(ps []portRes, x portRes) []portRes {
	for i, p := range ps {
		if p == x {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
}
