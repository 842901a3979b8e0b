package daemon

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/agent"
	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/dispatcher"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/node"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/rpc"
	"github.com/swarmsim/swarmsim/realnet/wal"
)

// Mode is how a node starts.
type Mode uint8

const (
	ModeResume Mode = iota // the data directory holds a node
	ModeInit               // a new cluster
	ModeJoin               // join a running cluster
)

// Options configure a daemon. DataDir and Listen are required.
type Options struct {
	Mode    Mode
	DataDir string
	// Listen is the gRPC address (host:port); Advertise what peers dial
	// (default Listen). Resuming, an empty Listen (and Advertise) means
	// what the node used before.
	Listen, Advertise string
	// HTTPAddr serves /metrics and /healthz; empty serves none.
	HTTPAddr string
	// JoinAddr and Token: where and how to join (ModeJoin).
	JoinAddr, Token string

	// Executor: "auto" (Docker when a daemon answers, else reject),
	// "docker", "reject" or "memory".
	Executor string
	// Hostname and Labels describe the node (Hostname defaults to the
	// machine's); NanoCPUs and MemoryBytes its resources (default: the
	// machine's).
	Hostname              string
	Labels                map[string]string
	NanoCPUs, MemoryBytes int64

	// Security is how connections are secured: SecurityCA (the default)
	// is mutual TLS 1.3 on the cluster CA's certificates; SecurityStatic
	// takes TLS (certificates from PEM files); SecurityOff is plain gRPC,
	// identity from hello headers and join tokens, on loopback only.
	Security Security
	// TLS is SecurityStatic's settings.
	TLS *realnet.TLSConfig

	// Raft and dispatcher timing (zero: the engine's defaults).
	RaftTick        time.Duration
	ElectionTicks   int
	SnapshotEvery   uint64
	HeartbeatPeriod time.Duration

	Logger *slog.Logger
}

// Security is how a daemon secures its connections.
type Security uint8

const (
	SecurityCA     Security = iota // mutual TLS on the cluster CA's certificates
	SecurityStatic                 // mutual TLS on certificates from PEM files (Options.TLS)
	SecurityOff                    // plain gRPC, loopback only
)

// Meta keys the daemon keeps in the WAL. raft/id is the manager's own key
// (engine/manager), written here too for the first manager, whose raft ID
// must be known before raft starts (it is in the bootstrap member list).
const (
	metaNodeID     = "swarmd/node-id"
	metaRole       = "swarmd/role"
	metaAddr       = "swarmd/addr"
	metaListen     = "swarmd/listen"
	metaToken      = "swarmd/token"
	metaBootstrap  = "swarmd/bootstrap"
	metaJoinTarget = "swarmd/join-target"
	metaJoinTokens = "swarmd/join-tokens"
	metaPeers      = "swarmd/peers"
	metaRootCA     = "swarmd/root-ca"
	metaRaftID     = "raft/id"
)

// refreshPeriod is how often the loop refreshes what other goroutines read
// (the admission snapshot, the address book from raft members) and
// persists the managers' addresses when they changed.
const refreshPeriod = 500 * time.Millisecond

// ErrNoNode: resuming a data directory that holds no node.
var ErrNoNode = errors.New("the data directory holds no node: run `swarmd init` or `swarmd join` first")

// Daemon is one running swarmd node.
type Daemon struct {
	opts Options
	log  *slog.Logger

	id        env.NodeID
	loop      *realnet.Loop
	wal       *wal.WAL
	tr        *realnet.Transport
	exec      env.Executor
	closeExec func()
	grpc      *grpc.Server
	lis       net.Listener
	local     *grpc.Server // the data directory's socket (local.go)
	localLis  net.Listener
	// tls is what every connection uses (nil: SecurityOff); nodeTLS its
	// CA credentials under SecurityCA.
	tls     *realnet.TLSConfig
	nodeTLS *realnet.NodeTLS
	locked  atomic.Bool // an autolocked manager waiting for its key
	http    *http.Server
	httpLis net.Listener

	// Loop-owned.
	node       *node.Node
	digests    *appliedDigests // of the entries this node's manager applied
	led        *ledTerms       // the terms this node's manager led
	initTokens *api.JoinTokens
	created    bool // this start created the cluster
	savedBook  uint64
	refresh    env.Timer

	adm      atomic.Pointer[admission]
	token    string
	joinedAs env.Role // role at start

	stopOnce sync.Once
	leaving  atomic.Bool
	done     chan struct{}
	err      error
}

// identity is what the data directory says about the node.
type identity struct {
	id         env.NodeID
	role       env.Role
	addr       string // advertised
	listen     string
	token      string
	bootstrap  bool
	raftID     uint64
	joinTarget env.NodeID
	tokens     *api.JoinTokens
	// created: this start made the identity, and the cluster (init on an
	// empty data directory).
	created bool
	// rootCA is the root init created, for the first cluster object
	// (kept until then: a first manager that crashes before its first
	// leadership bootstraps again with the same root).
	rootCA *api.RootCA
	peers  *rpc.AddressBook
	// creds are the node's certificate and key, nil before it joined.
	creds *ca.Credentials
}

// Start starts a node as opts say and returns once it serves.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DataDir == "" || opts.Listen == "" && opts.Mode != ModeResume {
		return nil, errors.New("swarmd: a data directory and a listen address are required")
	}
	if opts.Security == SecurityStatic && opts.TLS == nil {
		return nil, errors.New("swarmd: static TLS needs certificates")
	}
	if opts.Listen != "" {
		if err := checkListen(opts); err != nil {
			return nil, err
		}
	}
	if opts.HTTPAddr != "" {
		// /metrics and /healthz are plain HTTP: loopback only for now.
		if err := realnet.CheckListen(opts.HTTPAddr, nil); err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
	}
	d := &Daemon{opts: opts, log: opts.Logger, done: make(chan struct{})}
	if err := d.start(ctx); err != nil {
		d.teardown()
		return nil, err
	}
	return d, nil
}

// checkListen applies the listen rule: anywhere with TLS; without it,
// loopback only.
func checkListen(opts Options) error {
	return realnet.CheckListen(opts.Listen, listenTLS(opts))
}

// listenTLS is what CheckListen is told: the server's TLS, or none.
func listenTLS(opts Options) *tls.Config {
	switch opts.Security {
	case SecurityCA:
		return &tls.Config{MinVersion: tls.VersionTLS13} // NodeTLS's, built once the node is known
	case SecurityStatic:
		return opts.TLS.Server
	}
	return nil
}

// joinTLS is what a joiner dials its first manager with: under the CA,
// no certificate, and the server pinned to the token's root.
func joinTLS(opts Options) *realnet.TLSConfig {
	switch opts.Security {
	case SecurityCA:
		return realnet.NewNodeTLS(nil, opts.Token, nil).Config()
	case SecurityStatic:
		return opts.TLS
	}
	return nil
}

func (d *Daemon) start(ctx context.Context) error {
	opts := d.opts
	d.loop = realnet.NewLoop()
	w, err := wal.Open(filepath.Join(opts.DataDir, "wal"), d.loop, wal.Options{})
	if err != nil {
		return fmt.Errorf("open data directory %s: %w", opts.DataDir, err)
	}
	d.wal = w
	disk, err := w.Load()
	if err != nil {
		return fmt.Errorf("read data directory %s: %w", opts.DataDir, err)
	}
	ident, err := d.identify(ctx, disk.Meta)
	if err != nil {
		return err
	}
	d.id, d.token, d.joinedAs = ident.id, ident.token, ident.role
	if d.opts.Listen == "" {
		// Resuming without --listen: where the node listened before.
		d.opts.Listen = ident.listen
		if err := checkListen(d.opts); err != nil {
			return err
		}
	}
	opts = d.opts
	d.initTokens, d.created = ident.tokens, ident.created
	switch opts.Security {
	case SecurityCA:
		d.nodeTLS = realnet.NewNodeTLS(ident.creds, ident.token, d.loop.Now)
		d.tls = d.nodeTLS.Config()
	case SecurityStatic:
		d.tls = opts.TLS
	}
	base := d.log // the engine and the transport name the node themselves
	d.log = d.log.With("node", string(d.id))

	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	d.lis = lis

	d.adm.Store(&admission{})
	// Under the CA, the engine's table decides every message (the node
	// admits each again, removed nodes included); otherwise the join
	// table, the least that makes tokens mean something.
	authorize := realnet.JoinTable().Authorize
	if opts.Security == SecurityCA {
		authorize = func(p env.Peer, method string) error { return ca.Authorize(method, p) }
	}
	tr, err := realnet.NewTransport(realnet.TransportConfig{
		ID: d.id, Addr: ident.addr, Role: ident.role, Token: ident.token, Loop: d.loop, TLS: d.tls,
		Admit: realnet.AdmitFunc(d.admit), Authorize: authorize, Logger: base,
	})
	if err != nil {
		return err
	}
	d.tr = tr
	for _, p := range ident.peers.GetPeers() {
		tr.Book().Learn(env.NodeID(p.GetNodeId()), p.GetAddr(), p.GetManager(), realnet.AddrMember)
	}
	if ident.joinTarget != "" && opts.JoinAddr != "" {
		tr.Book().Learn(ident.joinTarget, opts.JoinAddr, true, realnet.AddrStatic)
	}
	tr.SetJoinHandler(d.join)

	d.exec, d.closeExec = newExecutor(ctx, opts.Executor, d.loop, d.id, d.log)

	cfg := d.nodeConfig(ident, base)
	e := env.Env{ID: d.id, Loop: d.loop, Clock: d.loop, Rand: realnet.NewRand(), Transport: tr, Storage: w, Executor: d.exec}
	var nerr error
	if err := d.loop.Do(ctx, func() {
		d.node, nerr = node.New(e, cfg)
		if nerr != nil {
			return
		}
		tr.SetHandler(d.node.Handle)
		d.locked.Store(d.node.Locked())
		d.refreshTick()
	}); err != nil {
		return err
	}
	if nerr != nil {
		return nerr
	}

	rpcAuthorize := realnet.JoinTable().Authorize
	if opts.Security == SecurityCA {
		rpcAuthorize = d.authorizeRPC
	}
	if d.locked.Load() {
		d.log.Warn("locked: this manager's disk is sealed by the cluster's unlock key; it serves nothing until `swarmd unlock`",
			"socket", SocketPath(opts.DataDir))
	}
	d.grpc = grpc.NewServer(realnet.ServerOptions(d.tls, 0, rpcAuthorize)...)
	tr.Register(d.grpc)
	rpc.RegisterControlServer(d.grpc, realnet.NewControlServer(d.loop, d.manager))
	rpc.RegisterDaemonServer(d.grpc, &daemonServer{d: d})
	go func() {
		if err := d.grpc.Serve(lis); err != nil {
			d.log.Error("grpc server stopped", "err", err)
		}
	}()
	if err := d.serveLocal(); err != nil {
		return err
	}
	if opts.HTTPAddr != "" {
		if err := d.serveHTTP(); err != nil {
			return err
		}
	}
	d.log.Info("swarmd started", "role", ident.role.String(), "listen", opts.Listen, "advertise", ident.addr,
		"data_dir", opts.DataDir, "http", opts.HTTPAddr)
	return nil
}

// manager is the node's manager now (on the loop).
func (d *Daemon) manager() *manager.Manager {
	if d.node == nil {
		return nil
	}
	return d.node.Manager()
}

// identify reads the node's identity from the data directory, or creates
// it (Init, Join) and makes it durable before anything starts.
func (d *Daemon) identify(ctx context.Context, meta map[string][]byte) (identity, error) {
	opts := d.opts
	if id := string(meta[metaNodeID]); id != "" {
		ident := identity{
			id:         env.NodeID(id),
			role:       env.RoleWorker,
			addr:       string(meta[metaAddr]),
			listen:     string(meta[metaListen]),
			token:      string(meta[metaToken]),
			bootstrap:  len(meta[metaBootstrap]) > 0,
			joinTarget: env.NodeID(meta[metaJoinTarget]),
		}
		if string(meta[metaRole]) == "manager" {
			ident.role = env.RoleManager
		}
		if b := meta[metaRaftID]; len(b) == 8 {
			ident.raftID = binary.BigEndian.Uint64(b)
		}
		if b := meta[metaJoinTokens]; len(b) > 0 {
			ident.tokens = &api.JoinTokens{}
			if err := proto.Unmarshal(b, ident.tokens); err != nil {
				return identity{}, fmt.Errorf("data directory: join tokens: %w", err)
			}
		}
		if b := meta[metaRootCA]; len(b) > 0 {
			ident.rootCA = &api.RootCA{}
			if err := proto.Unmarshal(b, ident.rootCA); err != nil {
				return identity{}, fmt.Errorf("data directory: root CA: %w", err)
			}
		}
		creds, err := credentialsFromMeta(meta)
		if err != nil {
			return identity{}, fmt.Errorf("data directory: %w", err)
		}
		ident.creds = creds
		ident.peers = &rpc.AddressBook{}
		if err := proto.Unmarshal(meta[metaPeers], ident.peers); err != nil {
			return identity{}, fmt.Errorf("data directory: peers: %w", err)
		}
		if ident.listen == "" {
			ident.listen = ident.addr
		}
		// A node that moved keeps its identity; peers learn the new
		// address from its hellos.
		switch {
		case opts.Advertise != "":
			ident.addr = opts.Advertise
		case opts.Listen != "":
			ident.addr = opts.Listen
		}
		if opts.Listen != "" {
			ident.listen = opts.Listen
		}
		if opts.Mode != ModeResume {
			d.log.Info("the data directory holds a node already: resuming it", "node", id, "role", ident.role.String())
		}
		return ident, d.saveIdentity(ident)
	}
	rnd := realnet.NewRand()
	ident := identity{id: env.NodeID(api.NewID(rnd)), addr: opts.Advertise, listen: opts.Listen}
	if ident.addr == "" {
		ident.addr = opts.Listen
	}
	switch opts.Mode {
	case ModeInit:
		ident.role = env.RoleManager
		ident.bootstrap = true
		ident.raftID = raft.NewRaftID(rnd)
		// The cluster's root CA and join tokens (which name the root's
		// digest), and this first manager's own certificate under it.
		boot, err := ca.NewBootstrap(rnd, time.Now())
		if err != nil {
			return identity{}, fmt.Errorf("init: %w", err)
		}
		creds, err := boot.Issue(ident.id, env.RoleManager, rnd, time.Now(), 0)
		if err != nil {
			return identity{}, fmt.Errorf("init: %w", err)
		}
		if err := ca.Provision(d.wal, creds); err != nil {
			return identity{}, fmt.Errorf("data directory: %w", err)
		}
		ident.tokens, ident.rootCA, ident.creds = boot.Tokens, boot.RootCA(), creds
		ident.token = ident.tokens.Manager
		ident.created = true
	case ModeJoin:
		resp, err := preflightJoin(ctx, opts, ident)
		if err != nil {
			return identity{}, err
		}
		ident.role = env.RoleWorker
		if resp.GetManager() {
			ident.role = env.RoleManager
		}
		ident.token = opts.Token
		ident.joinTarget = env.NodeID(resp.GetNodeId())
		ident.peers = &rpc.AddressBook{Peers: resp.GetManagers()}
	default:
		return identity{}, ErrNoNode
	}
	return ident, d.saveIdentity(ident)
}

// saveIdentity stages the identity and waits until it is durable.
func (d *Daemon) saveIdentity(ident identity) error {
	set := func(k string, v []byte) error { return d.wal.SetMeta(k, v) }
	role := "worker"
	if ident.role == env.RoleManager {
		role = "manager"
	}
	kv := []struct {
		k string
		v []byte
	}{
		{metaNodeID, []byte(ident.id)}, {metaRole, []byte(role)}, {metaAddr, []byte(ident.addr)}, {metaListen, []byte(ident.listen)},
		{metaToken, []byte(ident.token)}, {metaJoinTarget, []byte(ident.joinTarget)},
	}
	if ident.bootstrap {
		kv = append(kv, struct {
			k string
			v []byte
		}{metaBootstrap, []byte("1")})
	}
	if ident.raftID != 0 {
		kv = append(kv, struct {
			k string
			v []byte
		}{metaRaftID, binary.BigEndian.AppendUint64(nil, ident.raftID)})
	}
	if ident.tokens != nil {
		b, _ := proto.Marshal(ident.tokens)
		kv = append(kv, struct {
			k string
			v []byte
		}{metaJoinTokens, b})
	}
	if ident.rootCA != nil {
		b, _ := proto.Marshal(ident.rootCA)
		kv = append(kv, struct {
			k string
			v []byte
		}{metaRootCA, b})
	}
	if ident.peers != nil {
		b, _ := proto.Marshal(ident.peers)
		kv = append(kv, struct {
			k string
			v []byte
		}{metaPeers, b})
	}
	for _, e := range kv {
		if err := set(e.k, e.v); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	errc := make(chan error, 1)
	d.wal.Sync(func(err error) { errc <- err })
	if err := <-errc; err != nil {
		return fmt.Errorf("data directory: sync: %w", err)
	}
	return nil
}

// preflightJoin asks the manager at opts.JoinAddr whether the token is
// good and which managers there are. It retries while the manager cannot
// be reached, up to ctx's deadline or a minute.
func preflightJoin(ctx context.Context, opts Options, ident identity) (*rpc.JoinResponse, error) {
	if opts.JoinAddr == "" || opts.Token == "" {
		return nil, errors.New("join: a manager address and a token are required")
	}
	if opts.Security == SecurityCA {
		// The token names the root the manager must chain to: one that
		// does not parse can pin nothing.
		if _, err := ca.ParseJoinToken(opts.Token); err != nil {
			return nil, fmt.Errorf("join: invalid join token: %w", err)
		}
	}
	conn, err := grpc.NewClient(opts.JoinAddr, realnet.DialOptions(joinTLS(opts), 0)...)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", opts.JoinAddr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req := &rpc.JoinRequest{Token: opts.Token, NodeId: string(ident.id), Addr: ident.addr}
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := rpc.NewPeerClient(conn).Join(cctx, req)
		ccancel()
		if err == nil {
			return resp, nil
		}
		if opts.Security == SecurityCA && strings.Contains(err.Error(), "handshake failed") {
			// The manager's chain holds no root the token names: waiting
			// changes nothing.
			return nil, fmt.Errorf("join: the node at %s is not a manager of the cluster the token names (invalid join token, or a wrong address): %s",
				opts.JoinAddr, status.Convert(err).Message())
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("join: no manager answered at %s: %w", opts.JoinAddr, err)
			}
			time.Sleep(500 * time.Millisecond)
		default:
			return nil, fmt.Errorf("join: the manager at %s refused: %s", opts.JoinAddr, status.Convert(err).Message())
		}
	}
}

// nodeConfig builds the engine node's configuration.
func (d *Daemon) nodeConfig(ident identity, log *slog.Logger) node.Config {
	opts := d.opts
	d.digests, d.led = newAppliedDigests(), &ledTerms{}
	rc := raft.Config{
		Tick:            opts.RaftTick,
		ElectionTicks:   opts.ElectionTicks,
		SnapshotEntries: opts.SnapshotEvery,
		Observer:        observers{d.digests, d.led},
		Logf: func(format string, args ...any) {
			d.log.Warn(fmt.Sprintf(format, args...), "component", "raft")
		},
	}
	template := manager.Config{
		Raft:       rc,
		Addr:       ident.addr,
		Dispatcher: dispatcher.Config{HeartbeatPeriod: opts.HeartbeatPeriod},
		Cluster: &api.ClusterSpec{
			Name:       "swarmsim",
			Dispatcher: &api.DispatcherConfig{HeartbeatPeriod: int64(opts.HeartbeatPeriod)},
		},
		JoinTokens: ident.tokens,
		Logger:     log,
	}
	cfg := node.Config{
		Agent: agent.Config{
			Managers:    d.knownManagers(ident),
			Description: d.description(),
		},
		CA: ca.Config{
			JoinToken: ident.token,
			Name:      d.description().GetHostname(),
			Managers:  d.knownManagers(ident),
			// Without TLS the transport stamps admitted peers with the
			// cluster this node's certificate names. Under the CA, a new
			// certificate (joined, renewed, promoted) is presented from
			// the next handshake on: drop the connections made with the
			// old one.
			OnCertificate: func(cr *ca.Credentials) {
				d.tr.SetOrg(cr.Cert.Peer.Org)
				if d.nodeTLS != nil && d.nodeTLS.SetCredentials(cr) {
					go d.tr.Reconnect()
				}
			},
		},
		Promotion:    &template,
		Logger:       log,
		OnRoleChange: d.roleChanged,
	}
	if ident.role == env.RoleManager {
		mc := template
		switch {
		case ident.bootstrap:
			mc.Raft.RaftID = ident.raftID
			mc.RootCA = ident.rootCA
			mc.Bootstrap = []raft.Member{{RaftID: ident.raftID, NodeID: ident.id, Addr: ident.addr}}
		default:
			// The raft ID is drawn and kept by the manager (raft/id); a
			// node with raft state restarts from it, one without joins.
			mc.Join = cfg.Agent.Managers
			mc.Join = slices.DeleteFunc(slices.Clone(mc.Join), func(id env.NodeID) bool { return id == ident.id })
			if ident.joinTarget != "" && !slices.Contains(mc.Join, ident.joinTarget) {
				mc.Join = append([]env.NodeID{ident.joinTarget}, mc.Join...)
			}
		}
		cfg.Manager = &mc
	}
	return cfg
}

// knownManagers lists the managers the node knows of, this one included
// when it is one.
func (d *Daemon) knownManagers(ident identity) []env.NodeID {
	var out []env.NodeID
	if ident.joinTarget != "" {
		out = append(out, ident.joinTarget)
	}
	for _, p := range ident.peers.GetPeers() {
		if id := env.NodeID(p.GetNodeId()); p.GetManager() && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if ident.role == env.RoleManager && !slices.Contains(out, ident.id) {
		out = append(out, ident.id)
	}
	return out
}

func (d *Daemon) description() *api.NodeDescription {
	host := d.opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	cpus, mem := d.opts.NanoCPUs, d.opts.MemoryBytes
	if cpus <= 0 {
		cpus = int64(runtime.NumCPU()) * 1e9
	}
	if mem <= 0 {
		mem = memTotal()
	}
	return &api.NodeDescription{Hostname: host, Resources: &api.Resources{NanoCpus: cpus, MemoryBytes: mem}, EngineLabels: d.opts.Labels}
}

// memTotal reads the machine's memory from /proc/meminfo (Linux); 0
// elsewhere.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// roleChanged: the node started (promotion) or stopped (demotion,
// removal) its manager. On the loop.
func (d *Daemon) roleChanged(isManager bool) {
	role, name := env.RoleWorker, "worker"
	if isManager {
		role, name = env.RoleManager, "manager"
	}
	d.log.Info("role changed", "role", name)
	d.tr.SetRole(role)
	if err := d.wal.SetMeta(metaRole, []byte(name)); err != nil {
		d.log.Warn("cannot record the new role", "err", err)
		return
	}
	d.wal.Sync(func(err error) {
		if err != nil {
			d.log.Warn("cannot record the new role", "err", err)
		}
	})
}

// refreshTick runs refreshLoop now and every refreshPeriod.
func (d *Daemon) refreshTick() {
	d.refreshLoop()
	d.refresh = d.loop.AfterFunc(refreshPeriod, d.refreshTick)
}

// refreshLoop publishes what other goroutines need from the engine, on
// the loop: the admission snapshot and the managers' addresses.
func (d *Daemon) refreshLoop() {
	if d.node == nil {
		return
	}
	d.locked.Store(d.node.Locked())
	if c := d.node.CA(); c != nil && d.nodeTLS != nil {
		d.nodeTLS.SetRoots(c.Trust().Roots()) // both roots during a rotation
	}
	a := &admission{}
	if m := d.node.Manager(); m != nil {
		var ids []env.NodeID
		for _, mb := range m.Raft().Members() {
			ids = append(ids, mb.NodeID)
			if mb.NodeID != d.id {
				d.tr.Book().Learn(mb.NodeID, mb.Addr, true, realnet.AddrMember)
			}
		}
		if len(ids) > 0 {
			// A manager still joining has no members yet: keep the
			// managers its join answer named.
			d.tr.Book().SetManagers(ids)
		}
		a = snapshotAdmission(m, d.initTokens, d.tr.Book().Managers())
	}
	d.adm.Store(a)
	if v := d.tr.Book().Version(); v != d.savedBook {
		b, _ := proto.Marshal(&rpc.AddressBook{Peers: d.tr.Book().Managers()})
		if err := d.wal.SetMeta(metaPeers, b); err == nil {
			d.savedBook = v
			d.wal.Sync(func(err error) {
				if err != nil {
					d.log.Warn("cannot record the managers' addresses", "err", err)
				}
			})
		}
	}
}

// ID is the node's ID.
func (d *Daemon) ID() env.NodeID { return d.id }

// Addr is where the gRPC server listens.
func (d *Daemon) Addr() string { return d.lis.Addr().String() }

// DiskStats are the counters of the node's write-ahead log since it
// started (fsyncs, bytes written): what a benchmark divides commits by.
func (d *Daemon) DiskStats() wal.Stats { return d.wal.Stats() }

// JoinTokens returns the tokens this node drew (Init), nil otherwise.
func (d *Daemon) JoinTokens() *api.JoinTokens { return d.initTokens }

// Created reports whether this start created a new cluster (init on an
// empty data directory), rather than resumed a node.
func (d *Daemon) Created() bool { return d.created }

// Done is closed once the daemon has stopped (Stop, or a Leave).
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err is why the daemon stopped; nil after Stop or a Leave.
func (d *Daemon) Err() error { return d.err }

// Stop stops the node gracefully: the engine, the servers, the executor,
// then the WAL. Containers keep running for the next start to adopt.
func (d *Daemon) Stop() {
	d.stopOnce.Do(func() {
		d.teardown()
		if d.leaving.Load() {
			// A node that left keeps nothing: a restart would rejoin.
			if err := os.RemoveAll(filepath.Join(d.opts.DataDir, "wal")); err != nil {
				d.log.Warn("cannot remove the node's state", "err", err)
			}
		}
		d.log.Info("swarmd stopped")
		close(d.done)
	})
}

func (d *Daemon) teardown() {
	if d.loop != nil && d.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.loop.Do(ctx, func() {
			if d.refresh != nil {
				d.refresh.Stop()
			}
			d.node.Stop()
		})
		cancel()
	}
	if d.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = d.http.Shutdown(ctx)
		cancel()
	}
	if d.tr != nil {
		d.tr.Close() // our streams end, and with them the peers' handlers
	}
	if d.local != nil {
		d.local.Stop()
		os.Remove(SocketPath(d.opts.DataDir))
	}
	if d.grpc != nil {
		// Unary calls in flight get a moment to answer; peers' streams
		// into this node never end on their own, so the rest is cut.
		stopped := make(chan struct{})
		go func() { d.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(300 * time.Millisecond):
			d.grpc.Stop()
		}
	} else if d.lis != nil {
		d.lis.Close()
	}
	if d.closeExec != nil {
		d.closeExec()
	}
	if d.loop != nil {
		d.loop.Stop()
		<-d.loop.Done()
	}
	if d.wal != nil {
		if err := d.wal.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
			d.log.Warn("closing the WAL", "err", err)
		}
	}
}

// credentialsFromMeta reads the node's CA credentials from the WAL meta
// (engine/ca keeps them there), nil when it has none yet. The meta is not
// sealed: a locked manager still has its certificate, and serves its
// local socket and TLS handshakes (and nothing else) until unlocked.
func credentialsFromMeta(meta map[string][]byte) (*ca.Credentials, error) {
	certPEM, keyPEM := meta[ca.MetaCert], meta[ca.MetaKey]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil
	}
	certs, err := ca.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	key, err := ca.ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	roots, err := ca.ParseCertsPEM(meta[ca.MetaRoots])
	if err != nil {
		return nil, fmt.Errorf("roots: %w", err)
	}
	cert, err := ca.NewCertificate(certs[0], certs[1:])
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return &ca.Credentials{Cert: cert, Key: key, Roots: roots}, nil
}

// ReadCredentials reads the CA credentials of the stopped node whose data
// directory is dir (nil when it has none): for inspection and tests; a
// running daemon holds the directory (wal.ErrLocked).
func ReadCredentials(dir string) (*ca.Credentials, error) {
	loop := realnet.NewLoop()
	defer func() { loop.Stop(); <-loop.Done() }()
	w, err := wal.Open(filepath.Join(dir, "wal"), loop, wal.Options{})
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", dir, err)
	}
	defer w.Close()
	disk, err := w.Load()
	if err != nil {
		return nil, fmt.Errorf("read data directory %s: %w", dir, err)
	}
	return credentialsFromMeta(disk.Meta)
}
