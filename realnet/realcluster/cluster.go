package realcluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"google.golang.org/grpc"

	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/daemon"
	"github.com/swarmsim/swarmsim/realnet/docker"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// Port is where every swarmd listens, on every network of its container.
const Port = 4242

// MaxNodesPaired is the most nodes a cluster with pair networks may have:
// the /20 holds 480 /29s besides the control /24.
const MaxNodesPaired = 31

// MaxNodes is the most nodes a cluster may have (the control /24).
const MaxNodes = 200

// NodeSpec is one node of a cluster.
type NodeSpec struct {
	Name    string // m1, w3: the node's hostname and DNS name
	Manager bool
}

// Config describes a cluster.
type Config struct {
	// Run is the run's ID (labels, names); empty: NewRunID.
	Run string
	// Image is the swarmd image.
	Image string
	// Nodes in order; the first must be a manager (it runs init).
	Nodes []NodeSpec
	// Paired gives every pair of nodes a network of its own, so that
	// any two can be cut apart; otherwise they share one network.
	Paired bool
	// Autolock starts the cluster autolocked (swarmd init --autolock).
	Autolock bool
	// Daemon flags passed to every node (zero: swarmd's defaults).
	RaftTick        time.Duration
	ElectionTicks   int
	SnapshotEvery   uint64
	HeartbeatPeriod time.Duration
	// StartTimeout bounds each node's start (default 1m).
	StartTimeout time.Duration
}

// NewRunID is a short random ID for a run's labels and names.
func NewRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// DisableRyuk turns testcontainers' reaper container off unless the
// environment already decides: it would need an image from a registry,
// and every run here cleans up after itself. Call it before testcontainers
// is first used.
func DisableRyuk() {
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
}

// Quiet silences testcontainers' own logging (its emoji progress lines),
// process-wide.
func Quiet() { tclog.SetDefault(tclog.NewNoopLogger()) }

// segment is a network nodes talk over: the shared one, or one per pair.
type segment struct {
	name   string
	id     string
	subnet netip.Prefix
	ips    map[string]netip.Addr // node name -> its address here
	cut    map[string]bool       // nodes disconnected from it now
}

// Node is one swarmd container.
type Node struct {
	Spec  NodeSpec
	ctr   *testcontainers.DockerContainer
	ctlIP netip.Addr
	conn  *grpc.ClientConn

	mu sync.Mutex
	id string // the node's ID once it answered
}

// ID is the node's swarm ID ("" until it first answered).
func (n *Node) ID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// ContainerID is the swarmd container's ID.
func (n *Node) ContainerID() string { return n.ctr.GetContainerID() }

// Control is the node's control API.
func (n *Node) Control() rpc.ControlClient { return rpc.NewControlClient(n.conn) }

// Daemon is the node's own administration API (status, join tokens).
func (n *Node) Daemon() rpc.DaemonClient { return rpc.NewDaemonClient(n.conn) }

// Addr is the node's address on the control network, where it serves
// only callers with a certificate of the cluster (this process has none;
// it uses the node's local socket).
func (n *Node) Addr() string { return netip.AddrPortFrom(n.ctlIP, Port).String() }

// PresentedCertificate is the certificate the node presents to whoever
// connects to it now (its TLS leaf on the control network): this process
// holds no certificate, so the handshake fails after the node's part.
func (n *Node) PresentedCertificate(ctx context.Context) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	cfg := &tls.Config{
		InsecureSkipVerify: true, // only read, never trusted
		NextProtos:         []string{"h2"},
		MinVersion:         tls.VersionTLS13,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no certificate")
			}
			c, err := x509.ParseCertificate(raw[0])
			leaf = c
			return err
		},
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", n.Addr())
	if conn != nil {
		conn.Close()
	}
	if leaf != nil {
		return leaf, nil
	}
	if err == nil {
		err = errors.New("the handshake gave no certificate")
	}
	return nil, fmt.Errorf("%s's certificate: %w", n.Spec.Name, err)
}

// StealCredentials reads the certificate and key a node keeps in its data
// directory, as whoever gets hold of its disk would: from a copy of its
// write-ahead log, so that a running node is not disturbed.
func (c *Cluster) StealCredentials(name string) (*ca.Credentials, error) {
	if c.Node(name) == nil {
		return nil, fmt.Errorf("no node %s", name)
	}
	tmp, err := os.MkdirTemp(c.dataRoot, "stolen-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("realcluster: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(filepath.Join(tmp, "wal"), os.DirFS(filepath.Join(c.dataRoot, name, "wal"))); err != nil {
		return nil, fmt.Errorf("copying %s's disk: %w", name, err)
	}
	creds, err := daemon.ReadCredentials(tmp)
	if err == nil && creds == nil {
		err = errors.New("it holds no certificate")
	}
	if err != nil {
		return nil, fmt.Errorf("%s's credentials: %w", name, err)
	}
	return creds, nil
}

// Cluster is a running real cluster.
type Cluster struct {
	cfg Config
	cli *client.Client
	ctl *segment
	// ctlName is the control network's Docker name.
	ctlName string
	segs    []*segment // shared: one; paired: one per pair, in order
	// nets are every network created, for removal.
	nets    []*testcontainers.DockerNetwork
	nodesMu sync.Mutex // guards nodes and order while nodes start at once
	nodes   map[string]*Node
	order   []string
	// dataRoot holds each node's data directory (dataRoot/NAME, mounted
	// at /data), whose local socket is how this process reaches the node.
	dataRoot string
	// block is the run's /20; placed counts the nodes given addresses so
	// far (node i is at offset 10+i of the control /24 and of the shared
	// one), and pairOff is the offset of the next pair network's /29.
	block   netip.Prefix
	placed  int
	pairOff int

	mu sync.Mutex // guards the segments, their addresses and cut sets
}

// Start creates the networks and starts every node: init on the first,
// join on the others with the manager or worker token. It returns once
// every manager votes in raft and every node answers; on error it removes
// what it created.
func Start(ctx context.Context, cli *client.Client, cfg Config) (c *Cluster, err error) {
	if len(cfg.Nodes) == 0 || !cfg.Nodes[0].Manager {
		return nil, errors.New("realcluster: the first node must be a manager")
	}
	if cfg.Paired && len(cfg.Nodes) > MaxNodesPaired || len(cfg.Nodes) > MaxNodes {
		return nil, fmt.Errorf("realcluster: %d nodes is more than real mode runs (%d, or %d with partitions)", len(cfg.Nodes), MaxNodes, MaxNodesPaired)
	}
	if cfg.Run == "" {
		cfg.Run = NewRunID()
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = time.Minute
	}
	c = &Cluster{cfg: cfg, cli: cli, nodes: map[string]*Node{}}
	trackCluster(c, true)
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			_ = c.Close(cctx)
			c = nil
		}
	}()
	if c.dataRoot, err = os.MkdirTemp("", "swarmsim-"+cfg.Run+"-"); err != nil {
		return c, fmt.Errorf("realcluster: %w", err)
	}
	if err := c.createNetworks(ctx); err != nil {
		return c, err
	}
	first := cfg.Nodes[0]
	initArgs := []string{"init"}
	if cfg.Autolock {
		initArgs = append(initArgs, "--autolock")
	}
	if err := c.startNode(ctx, first, initArgs); err != nil {
		return c, err
	}
	ctx2, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	jt, err := waitFor(ctx2, func(ctx context.Context) (*joinTokens, error) {
		t, err := c.Node(first.Name).Daemon().JoinTokens(ctx, &rpc.Empty{})
		if err != nil {
			return nil, err
		}
		return &joinTokens{worker: t.GetWorker(), manager: t.GetManager()}, nil
	})
	if err != nil {
		return c, fmt.Errorf("%s: no join tokens: %w (logs: %s)", first.Name, err, c.LogTail(ctx, first.Name, 20))
	}
	// Managers join one at a time (raft adds one voter at a time); then
	// the workers, all at once. Every joiner asks the first manager.
	join := func(n NodeSpec) error {
		tok := jt.worker
		if n.Manager {
			tok = jt.manager
		}
		return c.startNode(ctx, n, []string{"join", "--token", tok}, net.JoinHostPort(first.Name, strconv.Itoa(Port)))
	}
	var workers []NodeSpec
	for _, n := range cfg.Nodes[1:] {
		if !n.Manager {
			workers = append(workers, n)
			continue
		}
		if err := join(n); err != nil {
			return c, err
		}
		// A manager counts once it votes: a run that cuts the first
		// manager off right after Start needs the others' quorum.
		if err := c.waitVoter(ctx, c.Node(n.Name)); err != nil {
			return c, err
		}
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, n := range workers {
		wg.Go(func() { errs[i] = join(n) })
	}
	wg.Wait()
	c.sortOrder()
	return c, errors.Join(errs...)
}

// Add starts a node that joins the running cluster through the manager
// via, with the manager or the worker join token as spec says (asked of
// via). A manager counts once it votes.
func (c *Cluster) Add(ctx context.Context, spec NodeSpec, via string) error {
	v := c.Node(via)
	if v == nil {
		return fmt.Errorf("realcluster: no node %s to join through", via)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	jt, err := v.Daemon().JoinTokens(tctx, &rpc.Empty{})
	cancel()
	if err != nil {
		return fmt.Errorf("join tokens from %s: %w", via, err)
	}
	tok := jt.GetWorker()
	if spec.Manager {
		tok = jt.GetManager()
	}
	n, err := c.launchJoin(ctx, spec, via, tok)
	if err != nil {
		return err
	}
	if err := c.waitUp(ctx, n); err != nil {
		return err
	}
	if spec.Manager {
		return c.waitVoter(ctx, n)
	}
	return nil
}

// launchJoin places a new node and launches it joining through via with
// token.
func (c *Cluster) launchJoin(ctx context.Context, spec NodeSpec, via, token string) (*Node, error) {
	if err := c.place(ctx, spec.Name); err != nil {
		return nil, err
	}
	return c.launch(ctx, spec, []string{"join", "--token", token}, net.JoinHostPort(via, strconv.Itoa(Port)))
}

// TryJoin starts a node that tries to join through via with token, as
// whoever holds that token would, and waits until it answers (joined) or
// its swarmd exits (refused, with output its last lines).
func (c *Cluster) TryJoin(ctx context.Context, spec NodeSpec, via, token string) (joined bool, output string, err error) {
	n, err := c.launchJoin(ctx, spec, via, token)
	if err != nil {
		return false, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	for {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		_, serr := n.Daemon().Status(sctx, &rpc.Empty{})
		scancel()
		if serr == nil {
			return true, "", nil
		}
		st, err := n.ctr.State(ctx)
		if err != nil {
			return false, "", fmt.Errorf("%s: %w", spec.Name, err)
		}
		if !st.Running && st.FinishedAt != "" && !strings.HasPrefix(st.FinishedAt, "0001-") {
			return false, c.LogTail(context.WithoutCancel(ctx), spec.Name, 5), nil
		}
		select {
		case <-ctx.Done():
			return false, "", fmt.Errorf("%s neither joined nor gave up: %w (logs: %s)", spec.Name, ctx.Err(), c.LogTail(context.WithoutCancel(ctx), spec.Name, 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// place gives a new node addresses of its own on the run's networks; in a
// paired cluster, a network with every node there, which a node isolated
// now joins only at the next Heal.
func (c *Cluster) place(ctx context.Context, name string) error {
	if c.Node(name) != nil {
		return fmt.Errorf("realcluster: a node named %s exists", name)
	}
	if c.cfg.Paired && c.placed >= MaxNodesPaired || c.placed >= MaxNodes {
		return fmt.Errorf("realcluster: a node more than real mode runs (%d, or %d with partitions)", MaxNodes, MaxNodesPaired)
	}
	i := c.placed
	c.placed++
	c.mu.Lock()
	c.ctl.ips[name] = c.at(10 + i)
	if !c.cfg.Paired {
		c.segs[0].ips[name] = c.at(256 + 10 + i)
	}
	c.mu.Unlock()
	if !c.cfg.Paired {
		return nil
	}
	for _, peer := range c.Nodes() {
		s := c.pairSegment(peer.Spec.Name, name)
		if err := c.createSegment(ctx, s); err != nil {
			return err
		}
		isolated := c.isolated(peer.Spec.Name)
		c.mu.Lock()
		c.segs = append(c.segs, s)
		if isolated {
			s.cut[peer.Spec.Name] = true
		}
		c.mu.Unlock()
		if !isolated {
			if err := c.connect(ctx, s, peer.Spec.Name, s.ips[peer.Spec.Name]); err != nil {
				return err
			}
		}
	}
	return nil
}

// isolated reports whether name is cut from every network it is on (and
// is on one).
func (c *Cluster) isolated(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	on := 0
	for _, s := range c.segs {
		if _, ok := s.ips[name]; ok {
			on++
			if !s.cut[name] {
				return false
			}
		}
	}
	return on > 0
}

// sortOrder puts the nodes in the order the configuration gives them.
func (c *Cluster) sortOrder() {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	idx := map[string]int{}
	for i, n := range c.cfg.Nodes {
		idx[n.Name] = i
	}
	slices.SortFunc(c.order, func(a, b string) int { return idx[a] - idx[b] })
}

type joinTokens struct{ worker, manager string }

// waitFor calls f every 250ms until it succeeds or ctx ends.
func waitFor[T any](ctx context.Context, f func(ctx context.Context) (T, error)) (T, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := f(cctx)
		cancel()
		if err == nil {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Run is the run's ID.
func (c *Cluster) Run() string { return c.cfg.Run }

// Node returns the named node, or nil.
func (c *Cluster) Node(name string) *Node {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	return c.nodes[name]
}

// Nodes lists the nodes in the configuration's order.
func (c *Cluster) Nodes() []*Node {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	out := make([]*Node, 0, len(c.order))
	for _, name := range c.order {
		out = append(out, c.nodes[name])
	}
	return out
}

// NameOf maps a node ID to its name ("" if unknown).
func (c *Cluster) NameOf(id string) string {
	for _, n := range c.Nodes() {
		if id != "" && n.ID() == id {
			return n.Spec.Name
		}
	}
	return ""
}

// ---- networks

// createNetworks picks a free /20 and creates the control network and the
// nodes' network(s) in it.
func (c *Cluster) createNetworks(ctx context.Context) error {
	block, err := c.freeBlock(ctx)
	if err != nil {
		return err
	}
	c.block, c.pairOff = block, 256
	names := make([]string, len(c.cfg.Nodes))
	for i, n := range c.cfg.Nodes {
		names[i] = n.Name
	}
	c.placed = len(names)
	ctl := &segment{name: "ctl", subnet: netip.PrefixFrom(c.at(0), 24), ips: map[string]netip.Addr{}, cut: map[string]bool{}}
	for i, n := range names {
		ctl.ips[n] = c.at(10 + i)
	}
	if err := c.createSegment(ctx, ctl); err != nil {
		return err
	}
	c.ctl, c.ctlName = ctl, c.nets[0].Name
	if !c.cfg.Paired {
		s := &segment{name: "nodes", subnet: netip.PrefixFrom(c.at(256), 24), ips: map[string]netip.Addr{}, cut: map[string]bool{}}
		for i, n := range names {
			s.ips[n] = c.at(256 + 10 + i)
		}
		c.segs = append(c.segs, s)
		return c.createSegment(ctx, s)
	}
	var pairs []*segment
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			pairs = append(pairs, c.pairSegment(names[i], names[j]))
		}
	}
	c.segs = append(c.segs, pairs...)
	// Docker serializes much of this, but not the round trips.
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, s := range pairs {
		wg.Go(func() { errs[i] = c.createSegment(ctx, s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// at is the address off past the start of the run's /20.
func (c *Cluster) at(off int) netip.Addr {
	base := c.block.Addr().As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(off)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// pairSegment lays out (without creating it) the network of a and b alone,
// on the next free /29.
func (c *Cluster) pairSegment(a, b string) *segment {
	off := c.pairOff
	c.pairOff += 8
	return &segment{name: a + "-" + b, subnet: netip.PrefixFrom(c.at(off), 29),
		ips: map[string]netip.Addr{a: c.at(off + 2), b: c.at(off + 3)}, cut: map[string]bool{}}
}

func (c *Cluster) createSegment(ctx context.Context, s *segment) error {
	nw, err := tcnetwork.New(ctx,
		tcnetwork.WithLabels(map[string]string{LabelRun: c.cfg.Run, "swarmsim.realcluster.segment": s.name}),
		tcnetwork.WithIPAM(&network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: s.subnet}}}),
	)
	if err != nil {
		return fmt.Errorf("creating network %s (%s): %w", s.name, s.subnet, err)
	}
	c.nodesMu.Lock()
	c.nets = append(c.nets, nw)
	c.nodesMu.Unlock()
	s.id = nw.ID
	return nil
}

// freeBlock finds a /20 in 10.0.0.0/8 that overlaps no Docker network's
// subnet and no address of this machine. The run ID picks where to start
// looking, so that two runs at once seldom try the same one.
func (c *Cluster) freeBlock(ctx context.Context) (netip.Prefix, error) {
	var used []netip.Prefix
	nets, err := c.cli.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("listing Docker networks: %w", err)
	}
	for _, n := range nets.Items {
		for _, ic := range n.IPAM.Config {
			if ic.Subnet.IsValid() {
				used = append(used, ic.Subnet)
			}
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	start := 0
	for _, ch := range c.cfg.Run {
		start = (start*31 + int(ch)) % 4096
	}
	for i := range 4096 {
		k := (start + i) % 4096
		if k < 16 { // keep clear of 10.0.0.0/16, a common choice
			continue
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 4), byte(k&15) << 4, 0}), 20)
		if !slices.ContainsFunc(used, p.Overlaps) {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("no free /20 in 10.0.0.0/8 for the run's networks")
}

// ---- nodes

func (c *Cluster) containerName(node string) string {
	return "swarmsim-" + c.cfg.Run + "-" + node
}

// startNode launches the node and waits until it answers on its local
// socket.
func (c *Cluster) startNode(ctx context.Context, spec NodeSpec, cmd []string, args ...string) error {
	n, err := c.launch(ctx, spec, cmd, args...)
	if err != nil {
		return err
	}
	return c.waitUp(ctx, n)
}

// launch creates the node's container on the control network, connects it
// to its segments with fixed addresses and its name as alias, and starts
// it.
func (c *Cluster) launch(ctx context.Context, spec NodeSpec, cmd []string, args ...string) (*Node, error) {
	cfg := c.cfg
	// Mutual TLS on the CA's certificates, as swarmd runs by default: the
	// nodes listen on every address of their container, and only a node
	// of this cluster gets through.
	cmd = append(cmd,
		"--listen", "0.0.0.0:"+strconv.Itoa(Port),
		"--advertise", net.JoinHostPort(spec.Name, strconv.Itoa(Port)),
		"--data-dir", "/data",
		"--hostname", spec.Name,
		"--executor", "docker",
		"--log-level", "info",
	)
	if cfg.RaftTick > 0 {
		cmd = append(cmd, "--raft-tick", cfg.RaftTick.String())
	}
	if cfg.ElectionTicks > 0 {
		cmd = append(cmd, "--election-ticks", strconv.Itoa(cfg.ElectionTicks))
	}
	if cfg.SnapshotEvery > 0 {
		cmd = append(cmd, "--snapshot-every", strconv.FormatUint(cfg.SnapshotEvery, 10))
	}
	if cfg.HeartbeatPeriod > 0 {
		cmd = append(cmd, "--heartbeat-period", cfg.HeartbeatPeriod.String())
	}
	cmd = append(cmd, args...)
	sock, err := dockerSocket(c.cli)
	if err != nil {
		return nil, err
	}
	sockGID, err := fileGroup(sock)
	if err != nil {
		return nil, err
	}
	// The data directory lives here, mounted into the container, and
	// swarmd runs as this process's user: its owner-only local socket is
	// then this process's to use, as the CLI uses it on a node's machine.
	dataDir := filepath.Join(c.dataRoot, spec.Name)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("realcluster: %w", err)
	}
	ctlNet := c.ctlName
	ctlIP := c.ctl.ips[spec.Name]
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:    cfg.Image,
			Name:     c.containerName(spec.Name),
			Cmd:      cmd,
			User:     strconv.Itoa(os.Getuid()) + ":" + strconv.Itoa(os.Getgid()),
			Labels:   map[string]string{LabelRun: cfg.Run, "swarmsim.realcluster.node": spec.Name},
			Networks: []string{ctlNet},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.Binds = append(hc.Binds, sock+":/var/run/docker.sock", dataDir+":/data")
				// The executor reaches the Docker daemon through the
				// socket's group, as a user in the docker group would.
				hc.GroupAdd = append(hc.GroupAdd, strconv.Itoa(sockGID))
			},
			EndpointSettingsModifier: func(m map[string]*network.EndpointSettings) {
				if es := m[ctlNet]; es != nil {
					es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ctlIP}
				}
			},
		},
		Started: false,
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", spec.Name, err)
	}
	dc, ok := ctr.(*testcontainers.DockerContainer)
	if !ok {
		return nil, fmt.Errorf("creating %s: unexpected container type %T", spec.Name, ctr)
	}
	conn, err := grpc.NewClient("unix://"+daemon.SocketPath(dataDir), realnet.DialOptions(nil, 0)...)
	if err != nil {
		_ = dc.Terminate(ctx)
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	n := &Node{Spec: spec, ctr: dc, ctlIP: ctlIP, conn: conn}
	c.nodesMu.Lock()
	c.nodes[spec.Name] = n
	c.order = append(c.order, spec.Name)
	c.nodesMu.Unlock()
	for _, s := range c.segs {
		ip, ok := s.ips[spec.Name]
		if !ok {
			continue
		}
		if err := c.connect(ctx, s, spec.Name, ip); err != nil {
			return nil, err
		}
	}
	if err := dc.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	return n, nil
}

func (c *Cluster) connect(ctx context.Context, s *segment, node string, ip netip.Addr) error {
	_, err := c.cli.NetworkConnect(ctx, s.id, client.NetworkConnectOptions{
		Container: c.Node(node).ContainerID(),
		EndpointConfig: &network.EndpointSettings{
			IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip},
			Aliases:    []string{node},
		},
	})
	if err != nil {
		return fmt.Errorf("connecting %s to network %s: %w", node, s.name, err)
	}
	return nil
}

// waitUp waits until the node answers its status, and records its ID.
func (c *Cluster) waitUp(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	st, err := waitFor(ctx, func(ctx context.Context) (*rpc.StatusResponse, error) {
		return n.Daemon().Status(ctx, &rpc.Empty{})
	})
	if err != nil {
		return fmt.Errorf("%s did not answer: %w (logs: %s)", n.Spec.Name, err, c.LogTail(context.WithoutCancel(ctx), n.Spec.Name, 20))
	}
	n.mu.Lock()
	n.id = st.GetNodeId()
	n.mu.Unlock()
	return nil
}

// waitVoter waits until the manager's own status lists it as a voting
// raft member (it joins as a learner and is promoted once caught up).
func (c *Cluster) waitVoter(ctx context.Context, n *Node) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	_, err := waitFor(ctx, func(ctx context.Context) (struct{}, error) {
		st, err := n.Daemon().Status(ctx, &rpc.Empty{})
		if err != nil {
			return struct{}{}, err
		}
		for _, m := range st.GetMembers() {
			if m.GetNodeId() == st.GetNodeId() && !m.GetLearner() {
				return struct{}{}, nil
			}
		}
		return struct{}{}, fmt.Errorf("not a voter yet (%d raft members)", len(st.GetMembers()))
	})
	if err != nil {
		return fmt.Errorf("%s did not become a raft voter: %w (logs: %s)", n.Spec.Name, err, c.LogTail(context.WithoutCancel(ctx), n.Spec.Name, 20))
	}
	return nil
}

// dockerSocket is the daemon's unix socket on this machine, which every
// node gets mounted.
func dockerSocket(cli *client.Client) (string, error) {
	host := cli.DaemonHost()
	if p, ok := strings.CutPrefix(host, "unix://"); ok {
		return p, nil
	}
	return "", fmt.Errorf("realcluster: the Docker daemon is at %s; real mode mounts a unix socket into its nodes", host)
}

// fileGroup is the group that owns path.
func fileGroup(path string) (int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("realcluster: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("realcluster: cannot tell the group of %s on this platform", path)
	}
	return int(st.Gid), nil
}

// Kill kills the node as a machine crash would: its swarmd at once
// (SIGKILL), then its task containers, which died with the machine. The
// container stays, with its data directory, for Restart.
func (c *Cluster) Kill(ctx context.Context, name string) error {
	n := c.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	if _, err := c.cli.ContainerKill(ctx, n.ContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("killing %s: %w", name, err)
	}
	tasks, err := c.TaskContainers(ctx)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		if t.Node == name && t.Running {
			if _, err := c.cli.ContainerKill(ctx, t.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil && !strings.Contains(err.Error(), "is not running") {
				return fmt.Errorf("killing %s's task container %s: %w", name, t.ContainerID, err)
			}
		}
	}
	return nil
}

// KillDaemon kills only the node's swarmd (SIGKILL), leaving its task
// containers running, as when the daemon process dies but the machine
// does not.
func (c *Cluster) KillDaemon(ctx context.Context, name string) error {
	n := c.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	if _, err := c.cli.ContainerKill(ctx, n.ContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("killing %s: %w", name, err)
	}
	return nil
}

// Stop stops the node's swarmd cleanly (SIGTERM): its task containers
// keep running, for the next start to adopt.
func (c *Cluster) Stop(ctx context.Context, name string) error {
	n := c.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	grace := 15 * time.Second
	if err := n.ctr.Stop(ctx, &grace); err != nil {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	return nil
}

// Restart starts a killed or stopped node's container again: swarmd
// resumes from the data directory the container kept. It returns once the
// node answers.
func (c *Cluster) Restart(ctx context.Context, name string) error {
	n := c.Node(name)
	if n == nil {
		return fmt.Errorf("no node %s", name)
	}
	if err := n.ctr.Start(ctx); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	return c.waitUp(ctx, n)
}

// ---- cuts

// Cut disconnects a from b: in a paired cluster, a leaves their network.
func (c *Cluster) Cut(ctx context.Context, a, b string) error {
	if !c.cfg.Paired {
		return errors.New("realcluster: cutting two nodes apart needs pair networks (Config.Paired)")
	}
	for _, s := range c.segs {
		if _, ok := s.ips[a]; !ok {
			continue
		}
		if _, ok := s.ips[b]; !ok {
			continue
		}
		return c.disconnect(ctx, s, a)
	}
	return fmt.Errorf("no network between %s and %s", a, b)
}

// Isolate disconnects the node from every network it shares with a peer.
func (c *Cluster) Isolate(ctx context.Context, name string) error {
	for _, s := range c.segs {
		if _, ok := s.ips[name]; ok {
			if err := c.disconnect(ctx, s, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Heal reconnects every node cut from a network, at its old address.
func (c *Cluster) Heal(ctx context.Context) error {
	for _, s := range c.segs {
		c.mu.Lock()
		cut := slices.Sorted(func(yield func(string) bool) {
			for n := range s.cut {
				if !yield(n) {
					return
				}
			}
		})
		c.mu.Unlock()
		for _, n := range cut {
			if err := c.connect(ctx, s, n, s.ips[n]); err != nil {
				return err
			}
			c.mu.Lock()
			delete(s.cut, n)
			c.mu.Unlock()
		}
	}
	return nil
}

func (c *Cluster) disconnect(ctx context.Context, s *segment, node string) error {
	c.mu.Lock()
	already := s.cut[node]
	c.mu.Unlock()
	if already {
		return nil
	}
	if _, err := c.cli.NetworkDisconnect(ctx, s.id, client.NetworkDisconnectOptions{Container: c.Node(node).ContainerID(), Force: true}); err != nil {
		return fmt.Errorf("disconnecting %s from network %s: %w", node, s.name, err)
	}
	c.mu.Lock()
	s.cut[node] = true
	c.mu.Unlock()
	return nil
}

// ---- task containers

// TaskContainer is one container a node's executor made.
type TaskContainer struct {
	ContainerID string
	Node        string // the node's name
	TaskID      string
	ServiceID   string
	Image       string
	Running     bool
}

// TaskContainers lists the task containers of this cluster's nodes (found
// by the executor's node label), running or not, sorted by node and task.
func (c *Cluster) TaskContainers(ctx context.Context) ([]TaskContainer, error) {
	byID := map[string]string{}
	for _, n := range c.Nodes() {
		if id := n.ID(); id != "" {
			byID[id] = n.Spec.Name
		}
	}
	if len(byID) == 0 {
		return nil, nil
	}
	res, err := c.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", docker.LabelNodeID)})
	if err != nil {
		return nil, fmt.Errorf("listing task containers: %w", err)
	}
	var out []TaskContainer
	for _, ct := range res.Items {
		name, ok := byID[ct.Labels[docker.LabelNodeID]]
		if !ok {
			continue
		}
		out = append(out, TaskContainer{
			ContainerID: ct.ID, Node: name, TaskID: ct.Labels[docker.LabelTaskID], ServiceID: ct.Labels[docker.LabelServiceID],
			Image: ct.Image, Running: ct.State == container.StateRunning,
		})
	}
	slices.SortFunc(out, func(a, b TaskContainer) int {
		return strings.Compare(a.Node+"/"+a.TaskID+"/"+a.ContainerID, b.Node+"/"+b.TaskID+"/"+b.ContainerID)
	})
	return out, nil
}

// KillTask kills one task container (SIGKILL: it exits with an error).
func (c *Cluster) KillTask(ctx context.Context, containerID string) error {
	_, err := c.cli.ContainerKill(ctx, containerID, client.ContainerKillOptions{Signal: "KILL"})
	return err
}

// ---- logs and cleanup

// Logs returns the node's swarmd output (stdout and stderr).
func (c *Cluster) Logs(ctx context.Context, name string) (string, error) {
	n := c.Node(name)
	if n == nil {
		return "", fmt.Errorf("no node %s", name)
	}
	rc, err := n.ctr.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// LogTail is the last lines of the node's output, on one line, for error
// messages.
func (c *Cluster) LogTail(ctx context.Context, name string, lines int) string {
	s, err := c.Logs(ctx, name)
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, " | ")
}

// Close removes every container and network the cluster created: the
// nodes, their task containers, then the networks. It goes on after an
// error and returns them all.
func (c *Cluster) Close(ctx context.Context) error {
	trackCluster(c, false)
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	nodes := c.Nodes()
	tasks, err := c.TaskContainers(ctx)
	if err != nil {
		fail(err)
	}
	for _, n := range nodes {
		n.conn.Close()
		// Kill first: a stopping node would start replacing its tasks.
		_, _ = c.cli.ContainerKill(ctx, n.ContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	}
	// Containers a node was creating when it was killed appear late.
	if more, err := c.TaskContainers(ctx); err == nil {
		tasks = append(tasks, more...)
	}
	var wg sync.WaitGroup
	seen := map[string]bool{}
	for _, t := range tasks {
		if seen[t.ContainerID] {
			continue
		}
		seen[t.ContainerID] = true
		wg.Go(func() {
			if _, err := c.cli.ContainerRemove(ctx, t.ContainerID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !strings.Contains(err.Error(), "No such container") {
				fail(fmt.Errorf("removing task container %s: %w", t.ContainerID, err))
			}
		})
	}
	for _, n := range nodes {
		wg.Go(func() {
			if err := n.ctr.Terminate(ctx); err != nil {
				fail(fmt.Errorf("removing %s: %w", n.Spec.Name, err))
			}
		})
	}
	wg.Wait()
	for _, nw := range c.nets {
		wg.Go(func() {
			if err := nw.Remove(ctx); err != nil {
				fail(fmt.Errorf("removing network %s: %w", nw.Name, err))
			}
		})
	}
	wg.Wait()
	if c.dataRoot != "" {
		if err := os.RemoveAll(c.dataRoot); err != nil {
			fail(fmt.Errorf("removing the nodes' data directories: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RemoveRun removes whatever a run left behind, found by its label:
// containers, then networks. For a process that died before its Close.
func RemoveRun(ctx context.Context, cli *client.Client, run string) error {
	f := make(client.Filters).Add("label", LabelRun+"="+run)
	var errs []error
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	errs = append(errs, err)
	if err == nil {
		for _, ct := range cs.Items {
			_, err := cli.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			errs = append(errs, err)
		}
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	errs = append(errs, err)
	if err == nil {
		for _, n := range ns.Items {
			_, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
