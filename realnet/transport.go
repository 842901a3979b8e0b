package realnet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// Defaults of TransportConfig.
const (
	DefaultQueueMessages   = 1024
	DefaultQueueBytes      = 32 << 20
	DefaultMaxQueuedBytes  = 256 << 20
	DefaultMaxMessageBytes = 128 << 20
	DefaultInboundBacklog  = 4096
	DefaultBackoffMin      = 100 * time.Millisecond
	DefaultBackoffMax      = 2 * time.Second
	// keepaliveTime is how long a connection may be silent before a ping
	// checks it; keepaliveTimeout how long the ping may go unanswered
	// before the connection is called dead and its streams fail.
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
	// addressSettle is how long a server stream lets its address book
	// settle after a change before sending it to the dialer.
	addressSettle = 50 * time.Millisecond
	// helloTimeout bounds the wait for a server's first address book.
	helloTimeout = 10 * time.Second
	// idleClose is how long a peer may go without a message before its
	// connection is closed.
	idleClose = 5 * time.Minute
)

// TLSConfig holds both ends' TLS settings. Without Identify (static
// certificates from PEM files), Server must require and verify client
// certificates (tls.RequireAndVerifyClientCert) and the identity of every
// peer is read from its verified chain (PeerFromCert). With Identify
// (NodeTLS: the cluster CA's certificates), the handshake's own checks
// verified the chain and Identify reads who presented it: RoleNone for a
// peer without a certificate, a joiner.
type TLSConfig struct {
	Server, Client *tls.Config
	Identify       func(tls.ConnectionState) (env.Peer, error)
}

// peer is the identity of the other end of a TLS connection.
func (tc *TLSConfig) peer(cs tls.ConnectionState) (env.Peer, error) {
	if tc != nil && tc.Identify != nil {
		return tc.Identify(cs)
	}
	chains := cs.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return env.Peer{}, fmt.Errorf("%w: no verified client certificate", ErrUnauthenticated)
	}
	return PeerFromCert(chains[0][0])
}

// joining reports whether peers without a certificate get through the
// handshake (as RoleNone): the CA's TLS, where joiners ask for theirs.
func (tc *TLSConfig) joining() bool { return tc != nil && tc.Identify != nil }

// TransportConfig configures a Transport. Zero fields take defaults.
type TransportConfig struct {
	// ID is this node; Addr where its transport listens (sent in every
	// hello so that peers can answer).
	ID   env.NodeID
	Addr string
	// Role is what this node claims to be when TLS is off; SetRole
	// changes it (promotion).
	Role env.Role
	// Token is the join token this node presents when TLS is off.
	Token string
	// Loop is where inbound messages are handled.
	Loop *Loop
	// TLS, when set, secures every connection; nil is plain gRPC, which
	// the daemon allows on loopback only.
	TLS *TLSConfig
	// Admit identifies peers when TLS is off (default TrustClaims).
	Admit Admitter
	// Authorize checks every inbound message (default AllowAll).
	Authorize Authorizer

	// QueueMessages and QueueBytes bound each peer's send queue, and
	// MaxQueuedBytes all of them together (a manager with thousands of
	// slow workers must not hold QueueBytes for each).
	QueueMessages  int
	QueueBytes     int
	MaxQueuedBytes int
	// MaxMessageBytes bounds one envelope on the wire (raft snapshots
	// travel whole).
	MaxMessageBytes int
	// InboundBacklog bounds the inbound messages posted to the loop and
	// not yet handled; past it, streams stop being read.
	InboundBacklog int
	// BackoffMin and BackoffMax bound the wait between failed dials.
	BackoffMin, BackoffMax time.Duration

	Logger *slog.Logger
}

func (c *TransportConfig) setDefaults() {
	if c.Admit == nil {
		c.Admit = TrustClaims
	}
	if c.Authorize == nil {
		c.Authorize = AllowAll
	}
	if c.QueueMessages <= 0 {
		c.QueueMessages = DefaultQueueMessages
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxQueuedBytes <= 0 {
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	c.MaxQueuedBytes = max(c.MaxQueuedBytes, c.QueueBytes)
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.InboundBacklog <= 0 {
		c.InboundBacklog = DefaultInboundBacklog
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// PeerStats are one peer's send counters.
type PeerStats struct {
	Queued      int    // messages waiting now
	QueuedBytes int    // their payload bytes
	Sent        uint64 // handed to the peer's stream
	// Dropped counts messages pushed out of a full queue (the oldest
	// go), Lost those that were in a queue or a stream when the peer
	// turned out unreachable or its stream broke.
	Dropped, Lost uint64
	Connected     bool
}

// TransportStats are a transport's counters.
type TransportStats struct {
	Sent, Dropped, Lost, EncodeErrors    uint64
	Received, Denied, DecodeErrors       uint64
	Refused                              uint64 // streams refused at open
	StreamsOpened, InboundStreams, Peers int
	// FaultLost counts the messages a faulty link (SetLinkFault) lost on
	// purpose.
	FaultLost uint64
}

// Transport is env.Transport over gRPC: see the package documentation.
//
// Back-pressure policy: each peer has a queue bounded in messages and
// bytes; when it is full the oldest message is dropped. Both protocols on
// top tolerate loss, and the newest message is the more useful one: raft
// re-sends what a follower did not acknowledge (the leader probes from
// the follower's last index; a heartbeat or vote request of the current
// term supersedes an older one), and the dispatcher protocol sequences
// assignments (a gap makes the agent ask for the whole set), resends
// status reports until acknowledged and replaces a lost heartbeat with
// the next. A peer that cannot be reached loses its whole queue: what was
// in it is stale by the time the peer is back, and both protocols retry
// on their own timers.
type Transport struct {
	cfg     TransportConfig
	log     *slog.Logger
	book    *AddressBook
	role    atomic.Uint32
	org     atomic.Pointer[string]
	handler atomic.Pointer[env.Handler]
	inbound chan struct{} // one token per message posted and not yet handled

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	peers  map[env.NodeID]*peerSender
	closed bool

	queuedBytes atomic.Int64 // in every peer's queue

	encodeErrors, received, denied, decodeErrors, refused, opened atomic.Uint64
	inboundStreams                                                atomic.Int64

	// joiners are the open streams of peers without a certificate, by the
	// node ID their hello gave: the CA answers them there (Send).
	joiners map[env.NodeID]*serverStream
	// verified counts the open streams of peers known by their
	// certificate: a node with one is answered on its own server, never
	// on a stream that merely claims its ID.
	verified map[env.NodeID]int

	join func(context.Context, *rpc.JoinRequest) (*rpc.JoinResponse, error)
	rpc.UnimplementedPeerServer

	// faults are the links a fault-injection test made faulty (nil: none,
	// the usual case, which costs Send one atomic load).
	faults    atomic.Pointer[map[env.NodeID]*faultyLink]
	faultMu   sync.Mutex // serializes SetLinkFault
	faultLost atomic.Uint64
}

var _ env.Transport = (*Transport)(nil)

// NewTransport returns a transport; Register it on a gRPC server to
// receive.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.ID == "" || cfg.Loop == nil {
		return nil, errors.New("realnet: transport needs a node ID and a loop")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "transport", "node", string(cfg.ID)),
		book:     NewAddressBook(),
		inbound:  make(chan struct{}, cfg.InboundBacklog),
		ctx:      ctx,
		cancel:   cancel,
		peers:    make(map[env.NodeID]*peerSender),
		joiners:  make(map[env.NodeID]*serverStream),
		verified: make(map[env.NodeID]int),
	}
	t.role.Store(uint32(cfg.Role))
	if cfg.Addr != "" {
		t.book.Learn(cfg.ID, cfg.Addr, cfg.Role == env.RoleManager, AddrStatic)
	}
	return t, nil
}

// Book is the transport's address book.
func (t *Transport) Book() *AddressBook { return t.book }

// SetHandler sets where inbound messages go (on the loop).
func (t *Transport) SetHandler(h env.Handler) { t.handler.Store(&h) }

// SetRole changes the role this node claims (promotion, demotion).
func (t *Transport) SetRole(r env.Role) {
	t.role.Store(uint32(r))
	t.book.Learn(t.cfg.ID, t.cfg.Addr, r == env.RoleManager, AddrStatic)
}

// Role is the role this node claims.
func (t *Transport) Role() env.Role { return env.Role(t.role.Load()) }

// SetOrg sets the cluster this node belongs to (its certificate's
// organization), once it knows it. Without TLS, the transport vouches for
// what admission decided: a peer admitted as a worker or a manager is of
// this node's cluster.
func (t *Transport) SetOrg(org string) { t.org.Store(&org) }

// Org is the cluster this node belongs to, "" before it knows.
func (t *Transport) Org() string {
	if p := t.org.Load(); p != nil {
		return *p
	}
	return ""
}

// SetJoinHandler sets who answers the Peer service's Join RPC.
func (t *Transport) SetJoinHandler(f func(context.Context, *rpc.JoinRequest) (*rpc.JoinResponse, error)) {
	t.join = f
}

// Register adds the Peer service to s.
func (t *Transport) Register(s *grpc.Server) { rpc.RegisterPeerServer(s, t) }

// Send implements env.Transport. It never blocks: the message is encoded
// now (the engine may reuse nothing it sent, but encoding here keeps the
// loop the only reader of engine objects) and queued for the peer's
// sender.
func (t *Transport) Send(to env.NodeID, m env.Message) {
	if to == t.cfg.ID {
		// The leader's own agent talks to its dispatcher: no wire.
		self := env.Peer{ID: t.cfg.ID, Role: t.Role(), Org: t.Org()}
		t.cfg.Loop.Post(func() {
			if h := t.handler.Load(); h != nil {
				(*h)(self, m)
			}
		})
		return
	}
	e, err := Encode(m)
	if err != nil {
		t.encodeErrors.Add(1)
		t.log.Warn("cannot encode a message; dropped", "to", string(to), "err", err)
		return
	}
	if joinerAnswer(e.GetMethod()) && t.answerJoiner(to, e) {
		return
	}
	if fs := t.faults.Load(); fs != nil {
		if l := (*fs)[to]; l != nil {
			l.send(e)
			return
		}
	}
	if ps := t.peer(to); ps != nil {
		ps.enqueue(e)
	}
}

// peer returns to's sender, starting it if needed; nil once closed.
func (t *Transport) peer(to env.NodeID) *peerSender {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	ps := t.peers[to]
	if ps == nil {
		ps = &peerSender{t: t, id: to, wake: make(chan struct{}, 1), ring: make([]*rpc.Envelope, t.cfg.QueueMessages)}
		t.peers[to] = ps
		t.wg.Add(1)
		go ps.run()
	}
	return ps
}

// PeerStats returns one peer's counters.
func (t *Transport) PeerStats(id env.NodeID) PeerStats {
	t.mu.Lock()
	ps := t.peers[id]
	t.mu.Unlock()
	if ps == nil {
		return PeerStats{}
	}
	return ps.stats()
}

// Stats returns the transport's counters.
func (t *Transport) Stats() TransportStats {
	t.mu.Lock()
	peers := make([]*peerSender, 0, len(t.peers))
	for _, ps := range t.peers {
		peers = append(peers, ps)
	}
	t.mu.Unlock()
	s := TransportStats{
		EncodeErrors: t.encodeErrors.Load(), Received: t.received.Load(), Denied: t.denied.Load(),
		DecodeErrors: t.decodeErrors.Load(), Refused: t.refused.Load(), StreamsOpened: int(t.opened.Load()),
		InboundStreams: int(t.inboundStreams.Load()), Peers: len(peers), FaultLost: t.faultLost.Load(),
	}
	for _, ps := range peers {
		p := ps.stats()
		s.Sent += p.Sent
		s.Dropped += p.Dropped
		s.Lost += p.Lost
	}
	return s
}

// Close stops every sender and closes their connections. Inbound streams
// end with the gRPC server.
func (t *Transport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	peers := make([]*peerSender, 0, len(t.peers))
	for _, ps := range t.peers {
		peers = append(peers, ps)
	}
	t.mu.Unlock()
	t.cancel()
	for _, ps := range peers {
		ps.close()
	}
	t.wg.Wait()
}

// answerJoiner sends a CA answer on the stream a joiner opened, if it has
// one open: the joiner has no certificate yet, so it serves nothing to
// dial. The hello's node ID is unauthenticated: whoever claims it gets
// the answer, which holds nothing secret (a certificate for the real
// joiner's key, useless without it, and the roots); the real joiner
// misses it and asks again. A member renewing asked over a stream its
// certificate opened: while one is open, its answer goes the usual way,
// so that no one can intercept a member's renewals by claiming its ID.
func (t *Transport) answerJoiner(to env.NodeID, e *rpc.Envelope) bool {
	t.mu.Lock()
	ss := t.joiners[to]
	if t.verified[to] > 0 {
		ss = nil
	}
	t.mu.Unlock()
	if ss == nil {
		return false
	}
	go func() {
		if err := ss.send(e); err != nil {
			t.log.Debug("cannot answer a joiner", "peer", string(to), "err", err)
		}
	}()
	return true
}

// Reconnect drops every outbound connection: the node's certificate
// changed (it joined, renewed or was promoted), and peers know it by the
// certificate of the handshake. Messages in flight are lost; the next
// ones dial again.
func (t *Transport) Reconnect() {
	t.mu.Lock()
	peers := make([]*peerSender, 0, len(t.peers))
	for _, ps := range t.peers {
		peers = append(peers, ps)
	}
	t.mu.Unlock()
	for _, ps := range peers {
		ps.disconnect(true)
	}
}

// ---- dialing

// DialOptions are the options every connection of this transport uses
// (the daemon's CLI-facing clients use them too).
func (t *Transport) DialOptions() []grpc.DialOption {
	return DialOptions(t.cfg.TLS, t.cfg.MaxMessageBytes)
}

// DialOptions returns the gRPC options for dialing a swarmd node: TLS or
// plain credentials, keepalives so that a cut connection is noticed, and
// message size limits.
func DialOptions(tc *TLSConfig, maxMsg int) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tc != nil && tc.Client != nil {
		creds = credentials.NewTLS(tc.Client)
	}
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout, PermitWithoutStream: true}),
		// gRPC's own reconnection backoff grows to 2 minutes by default: a
		// manager that restarts after a minute would wait that long to
		// hear from its leader. Keep it as short as our senders' own.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: DefaultBackoffMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: DefaultBackoffMax},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)),
	}
}

// KeepaliveEnforcement lets the clients of any server that is dialed
// with DialOptions ping as often as DialOptions makes them: gRPC's default
// policy answers a client pinging more often than every 5 minutes with
// GOAWAY (too_many_pings) and drops its connection.
func KeepaliveEnforcement() grpc.ServerOption {
	return grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveTime / 2, PermitWithoutStream: true})
}

// ServerOptions returns the gRPC server options a swarmd node uses: TLS
// when given, keepalive enforcement matching DialOptions, size limits and
// the authorization interceptor for unary RPCs.
func ServerOptions(tc *TLSConfig, maxMsg int, authorize Authorizer) []grpc.ServerOption {
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	if authorize == nil {
		authorize = AllowAll
	}
	opts := []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
		KeepaliveEnforcement(),
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.MaxSendMsgSize(maxMsg),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			p, err := tc.CallerOf(ctx)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, err.Error())
			}
			if err := authorize(p, info.FullMethod); err != nil {
				if _, isStatus := status.FromError(err); isStatus {
					return nil, err // the authorizer chose the code (a locked node)
				}
				return nil, status.Error(codes.PermissionDenied, err.Error())
			}
			return h(ctx, req)
		}),
	}
	if tc != nil && tc.Server != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc.Server)))
	}
	return opts
}

// CallerOf is the identity of a unary RPC's caller: its certificate's
// with TLS, else what its hello headers claim (a CLI sends none: an
// anonymous peer with RoleNone).
func CallerOf(ctx context.Context) (env.Peer, error) {
	var tc *TLSConfig
	return tc.CallerOf(ctx)
}

// CallerOf is the identity of a unary RPC's caller on a server with these
// TLS settings (tc may be nil).
func (tc *TLSConfig) CallerOf(ctx context.Context) (env.Peer, error) {
	if p, isTLS, err := tc.certPeer(ctx); isTLS {
		return p, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	h := helloFrom(md)
	return env.Peer{ID: h.NodeID, Role: h.Role}, nil
}

// helloMD is the metadata this node opens streams with.
func (t *Transport) helloMD() metadata.MD {
	role := "worker"
	if t.Role() == env.RoleManager {
		role = "manager"
	}
	md := metadata.Pairs(HeaderNodeID, string(t.cfg.ID), HeaderRole, role, HeaderAddr, t.cfg.Addr)
	if t.cfg.Token != "" && t.cfg.TLS == nil {
		md.Set(HeaderToken, t.cfg.Token)
	}
	return md
}

// ---- one peer's sender

type peerSender struct {
	t    *Transport
	id   env.NodeID
	wake chan struct{}

	mu       sync.Mutex
	ring     []*rpc.Envelope
	head, n  int
	bytes    int
	closed   bool
	sent     uint64
	dropped  uint64
	lost     uint64
	conn     *grpc.ClientConn
	connAddr string
	stream   peerStream
	cancel   context.CancelFunc
}

func envBytes(e *rpc.Envelope) int { return len(e.Payload) + len(e.Method) }

// enqueue adds e, dropping the oldest messages while the queue is over
// its bounds. A message alone larger than QueueBytes is still queued.
func (ps *peerSender) enqueue(e *rpc.Envelope) {
	size := envBytes(e)
	ps.mu.Lock()
	if ps.closed {
		ps.mu.Unlock()
		return
	}
	over := func() bool {
		return ps.n == len(ps.ring) || ps.bytes+size > ps.t.cfg.QueueBytes ||
			ps.t.queuedBytes.Load()+int64(size) > int64(ps.t.cfg.MaxQueuedBytes)
	}
	for ps.n > 0 && over() {
		ps.popLocked()
		ps.dropped++
	}
	if total := ps.t.queuedBytes.Load(); ps.n == 0 && total > 0 && total+int64(size) > int64(ps.t.cfg.MaxQueuedBytes) {
		// Other peers' queues hold the whole budget: this message goes.
		ps.dropped++
		ps.mu.Unlock()
		return
	}
	ps.ring[(ps.head+ps.n)%len(ps.ring)] = e
	ps.n++
	ps.bytes += size
	ps.t.queuedBytes.Add(int64(size))
	ps.mu.Unlock()
	select {
	case ps.wake <- struct{}{}:
	default:
	}
}

func (ps *peerSender) popLocked() *rpc.Envelope {
	e := ps.ring[ps.head]
	ps.ring[ps.head] = nil
	ps.head = (ps.head + 1) % len(ps.ring)
	ps.n--
	ps.bytes -= envBytes(e)
	ps.t.queuedBytes.Add(-int64(envBytes(e)))
	return e
}

// next waits for a message; nil once closed. A peer left idle for
// idleClose loses its connection (a removed node, a worker gone for good);
// the next message dials again.
func (ps *peerSender) next() *rpc.Envelope {
	idle := time.NewTimer(idleClose)
	defer idle.Stop()
	for {
		ps.mu.Lock()
		if ps.closed {
			ps.mu.Unlock()
			return nil
		}
		if ps.n > 0 {
			e := ps.popLocked()
			ps.mu.Unlock()
			return e
		}
		ps.mu.Unlock()
		select {
		case <-ps.wake:
		case <-idle.C:
			ps.disconnect(true)
		}
	}
}

// loseAll empties the queue: the peer is unreachable.
func (ps *peerSender) loseAll() {
	ps.mu.Lock()
	for ps.n > 0 {
		ps.popLocked()
		ps.lost++
	}
	ps.mu.Unlock()
}

func (ps *peerSender) stats() PeerStats {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return PeerStats{Queued: ps.n, QueuedBytes: ps.bytes, Sent: ps.sent, Dropped: ps.dropped, Lost: ps.lost, Connected: ps.stream != nil}
}

func (ps *peerSender) close() {
	ps.mu.Lock()
	ps.closed = true
	for ps.n > 0 {
		ps.popLocked()
	}
	ps.mu.Unlock()
	select {
	case ps.wake <- struct{}{}:
	default:
	}
}

func (ps *peerSender) run() {
	defer ps.t.wg.Done()
	defer ps.disconnect(true)
	failures := 0
	for {
		e := ps.next()
		if e == nil {
			return
		}
		stream, err := ps.ensureStream()
		if err != nil {
			ps.mu.Lock()
			ps.lost++
			ps.mu.Unlock()
			ps.loseAll()
			failures++
			ps.t.log.Debug("peer unreachable", "peer", string(ps.id), "err", err)
			if !ps.backoff(failures) {
				return
			}
			continue
		}
		// stream is the one ensureStream found or opened, not ps.stream
		// read again: Reconnect, on another goroutine, may have dropped
		// it meanwhile, and then this Send fails on its cancelled context.
		if err := stream.Send(e); err != nil {
			ps.mu.Lock()
			ps.lost++
			ps.mu.Unlock()
			ps.t.log.Debug("stream to peer broke", "peer", string(ps.id), "err", err)
			ps.disconnect(false)
			failures++
			if !ps.backoff(failures) {
				return
			}
			continue
		}
		failures = 0
		ps.mu.Lock()
		ps.sent++
		ps.mu.Unlock()
	}
}

// backoff waits before the next dial, jittered and growing with the
// failures; false when the transport closed meanwhile.
func (ps *peerSender) backoff(failures int) bool {
	cfg := &ps.t.cfg
	d := cfg.BackoffMin
	for i := 1; i < failures && d < cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, cfg.BackoffMax)
	d = d/2 + rand.N(d/2+1) // crypto-seeded global source; jitter only
	select {
	case <-time.After(d):
		return true
	case <-ps.t.ctx.Done():
		return false
	}
}

// ensureStream dials the peer if needed and opens the stream.
// peerStream is the stream a node opens to a peer: envelopes both ways.
type peerStream = grpc.BidiStreamingClient[rpc.Envelope, rpc.Envelope]

// ensureStream returns the open stream to the peer, dialing and opening
// one when there is none.
func (ps *peerSender) ensureStream() (peerStream, error) {
	ps.mu.Lock()
	if st := ps.stream; st != nil {
		ps.mu.Unlock()
		return st, nil
	}
	ps.mu.Unlock()
	addr, ok := ps.t.book.Lookup(ps.id)
	if !ok {
		return nil, fmt.Errorf("no address known for %s", ps.id)
	}
	ps.mu.Lock()
	if ps.conn != nil && ps.connAddr != addr {
		ps.conn.Close()
		ps.conn = nil
	}
	conn := ps.conn
	ps.mu.Unlock()
	if conn == nil {
		c, err := grpc.NewClient(addr, ps.t.DialOptions()...)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		conn = c
		ps.mu.Lock()
		ps.conn, ps.connAddr = c, addr
		ps.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ps.t.ctx, ps.t.helloMD()))
	stream, err := rpc.NewPeerClient(conn).Stream(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open stream to %s at %s: %w", ps.id, addr, err)
	}
	// The server answers with its address book, itself first: check that
	// the address still belongs to the node we mean, then keep learning.
	// A server that never answers is given up on.
	helloTimer := time.AfterFunc(helloTimeout, cancel)
	first, err := stream.Recv()
	helloTimer.Stop()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("stream to %s at %s: %w", ps.id, addr, err)
	}
	book, err := decodeBook(first)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("stream to %s at %s: %w", ps.id, addr, err)
	}
	server, err := ps.t.cfg.TLS.serverPeer(stream.Context())
	if err == nil && server.Role != env.RoleNone && server.ID != ps.id {
		err = fmt.Errorf("%s presents the certificate of %s", addr, server.ID)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("stream to %s at %s: %w", ps.id, addr, err)
	}
	if len(book.Peers) == 0 || book.Peers[0].GetNodeId() != string(ps.id) {
		cancel()
		got := ""
		if len(book.Peers) > 0 {
			got = book.Peers[0].GetNodeId()
		}
		return nil, fmt.Errorf("%s now serves node %q, not %s", addr, got, ps.id)
	}
	ps.t.learnBook(book)
	ps.t.opened.Add(1)
	ps.mu.Lock()
	ps.stream, ps.cancel = stream, cancel
	ps.mu.Unlock()
	ps.t.wg.Add(1)
	go func() {
		defer ps.t.wg.Done()
		ps.readBooks(stream, cancel, server)
	}()
	return stream, nil
}

// readBooks takes the address books the server sends on the stream
// until it ends; a broken stream is cancelled so that the sender's next
// Send fails at once and redials. With the CA's TLS, the server may also
// answer a joiner's certificate request there (answerJoiner): server is
// who the handshake verified, and the answer is authorized as any
// inbound message.
func (ps *peerSender) readBooks(stream peerStream, cancel context.CancelFunc, server env.Peer) {
	defer cancel()
	t := ps.t
	for {
		e, err := stream.Recv()
		if err != nil {
			return
		}
		if book, err := decodeBook(e); err == nil {
			t.learnBook(book)
			continue
		}
		if !t.cfg.TLS.joining() || !joinerAnswer(e.GetMethod()) || server.Role == env.RoleNone {
			t.decodeErrors.Add(1)
			continue
		}
		m, err := Decode(e)
		if err != nil {
			t.decodeErrors.Add(1)
			continue
		}
		if err := t.cfg.Authorize(server, e.GetMethod()); err != nil {
			t.denied.Add(1)
			continue
		}
		t.received.Add(1)
		if !t.deliver(stream.Context(), server, m) {
			return
		}
	}
}

// serverPeer is who served a stream this node opened: the zero Peer
// without TLS.
func (tc *TLSConfig) serverPeer(ctx context.Context) (env.Peer, error) {
	if tc == nil {
		return env.Peer{}, nil
	}
	gp, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return env.Peer{}, fmt.Errorf("%w: no peer on the stream", ErrUnauthenticated)
	}
	ti, ok := gp.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return env.Peer{}, fmt.Errorf("%w: the stream is not TLS", ErrUnauthenticated)
	}
	return tc.peer(ti.State)
}

// disconnect drops the stream (and the connection, when final).
func (ps *peerSender) disconnect(final bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.cancel != nil {
		ps.cancel()
	}
	ps.stream, ps.cancel = nil, nil
	if final && ps.conn != nil {
		ps.conn.Close()
		ps.conn = nil
	}
}

func decodeBook(e *rpc.Envelope) (*rpc.AddressBook, error) {
	if e.GetMethod() != MethodAddresses {
		return nil, fmt.Errorf("expected %s, got %.64q", MethodAddresses, e.GetMethod())
	}
	b := &rpc.AddressBook{}
	if err := proto.Unmarshal(e.GetPayload(), b); err != nil {
		return nil, fmt.Errorf("address book: %w", err)
	}
	return b, nil
}

// learnBook records a server's address book: the server itself as it
// said, the rest as gossip.
func (t *Transport) learnBook(b *rpc.AddressBook) {
	for i, p := range b.GetPeers() {
		src := AddrGossip
		if i == 0 {
			src = AddrMember
		}
		t.book.Learn(env.NodeID(p.GetNodeId()), p.GetAddr(), p.GetManager(), src)
	}
}

// bookEnvelope is this node's address book as sent to a dialer: itself,
// then the managers it knows.
func (t *Transport) bookEnvelope() *rpc.Envelope {
	self := &rpc.PeerAddress{NodeId: string(t.cfg.ID), Addr: t.cfg.Addr, Manager: t.Role() == env.RoleManager}
	peers := []*rpc.PeerAddress{self}
	for _, p := range t.book.Managers() {
		if p.NodeId != self.NodeId {
			peers = append(peers, p)
		}
	}
	b, _ := proto.Marshal(&rpc.AddressBook{Peers: peers})
	return &rpc.Envelope{Method: MethodAddresses, Payload: b}
}

// ---- receiving

// identify says who opened a stream: its certificate with TLS, else its
// hello through the Admitter.
func (t *Transport) identify(ctx context.Context) (env.Peer, Hello, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := helloFrom(md)
	if p, isTLS, err := t.cfg.TLS.certPeer(ctx); isTLS {
		switch {
		case err != nil:
		case p.Role == env.RoleNone:
			// A joiner, without a certificate: it is who its hello says,
			// with no right but to ask for one.
			p.ID = h.NodeID
		case h.NodeID != "" && h.NodeID != p.ID:
			err = fmt.Errorf("%w: certificate of %s, hello of %s", ErrUnauthenticated, p.ID, h.NodeID)
		}
		return p, h, err
	}
	p, err := t.cfg.Admit.Admit(h)
	return p, h, err
}

// Stream implements the Peer service: it reads a dialer's envelopes,
// decodes, authorizes and posts them to the loop.
func (t *Transport) Stream(srv grpc.BidiStreamingServer[rpc.Envelope, rpc.Envelope]) error {
	ctx := srv.Context()
	p, hello, err := t.identify(ctx)
	if err != nil {
		t.refused.Add(1)
		t.log.Info("stream refused", "peer", string(hello.NodeID), "err", err)
		return status.Error(codes.Unauthenticated, err.Error())
	}
	_, isTLS, _ := t.cfg.TLS.certPeer(ctx)
	if hello.Addr != "" && hello.NodeID == p.ID && p.Role != env.RoleNone {
		t.book.Learn(p.ID, hello.Addr, p.Role == env.RoleManager, AddrHello)
	}
	ss := &serverStream{srv: srv}
	book := t.bookEnvelope()
	if err := ss.send(book); err != nil {
		return err
	}
	t.inboundStreams.Add(1)
	defer t.inboundStreams.Add(-1)
	switch {
	case isTLS && p.Role == env.RoleNone && p.ID != "":
		t.mu.Lock()
		t.joiners[p.ID] = ss
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			if t.joiners[p.ID] == ss {
				delete(t.joiners, p.ID)
			}
			t.mu.Unlock()
		}()
	case isTLS:
		id := p.ID
		t.mu.Lock()
		t.verified[id]++
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			if t.verified[id]--; t.verified[id] <= 0 {
				delete(t.verified, id)
			}
			t.mu.Unlock()
		}()
	}

	// Keep the dialer's address book current; stops with the stream.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go t.sendBooks(sctx, ss, book.GetPayload())

	for {
		e, err := srv.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		m, err := Decode(e)
		if err != nil {
			t.decodeErrors.Add(1)
			t.log.Debug("undecodable message dropped", "peer", string(p.ID), "err", err)
			continue
		}
		if !isTLS {
			// Admitted again per message: a node removed or promoted since
			// the stream opened is seen as it is now.
			if p, err = t.cfg.Admit.Admit(hello); err != nil {
				t.refused.Add(1)
				return status.Error(codes.Unauthenticated, err.Error())
			}
			if p.Role != env.RoleNone && p.Org == "" {
				p.Org = t.Org()
			}
		}
		if err := t.cfg.Authorize(p, e.GetMethod()); err != nil {
			t.denied.Add(1)
			t.log.Debug("message refused", "peer", string(p.ID), "method", e.GetMethod(), "err", err)
			continue
		}
		t.received.Add(1)
		if !t.deliver(ctx, p, m) {
			return nil
		}
	}
}

// deliver posts m to the loop once a backlog slot is free; it blocks the
// stream's reader meanwhile, which is the back-pressure on the sender.
func (t *Transport) deliver(ctx context.Context, p env.Peer, m env.Message) bool {
	select {
	case t.inbound <- struct{}{}:
	case <-ctx.Done():
		return false
	case <-t.ctx.Done():
		return false
	}
	t.cfg.Loop.Post(func() {
		<-t.inbound
		if h := t.handler.Load(); h != nil {
			(*h)(p, m)
		}
	})
	return true
}

// serverStream is an inbound stream's sending side: the address books
// and, to a joiner, the CA's answers, from more than one goroutine.
type serverStream struct {
	mu  sync.Mutex
	srv grpc.BidiStreamingServer[rpc.Envelope, rpc.Envelope]
}

func (s *serverStream) send(e *rpc.Envelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.Send(e)
}

// sendBooks sends the dialer this node's address book again whenever it
// changes (a burst of changes, such as nodes joining together, goes as
// one book after addressSettle).
func (t *Transport) sendBooks(ctx context.Context, srv *serverStream, sent []byte) {
	last := t.book.Version()
	for {
		changed := t.book.Changed()
		if t.book.Version() == last {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(addressSettle):
		}
		if v := t.book.Version(); v != last {
			last = v
			// Only the managers go: a change among the workers is not sent.
			if e := t.bookEnvelope(); !bytes.Equal(e.GetPayload(), sent) {
				sent = e.GetPayload()
				if srv.send(e) != nil {
					return
				}
			}
		}
	}
}

// Join implements the Peer service's Join.
func (t *Transport) Join(ctx context.Context, req *rpc.JoinRequest) (*rpc.JoinResponse, error) {
	if t.join == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node does not take joins")
	}
	return t.join(ctx, req)
}

// PeerIDs lists the peers this transport has sent to, sorted.
func (t *Transport) PeerIDs() []env.NodeID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]env.NodeID, 0, len(t.peers))
	for id := range t.peers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
