package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// Where a node keeps its credentials on its disk (env.Storage meta).
const (
	MetaKey   = "ca/key"   // PKCS#8 PEM
	MetaCert  = "ca/cert"  // PEM: the leaf, then its intermediates
	MetaRoots = "ca/roots" // PEM: the roots it trusts
	// MetaJoinKey is the key a joiner asks with, kept before it asks: a
	// joiner that crashes after the CA recorded it comes back with the
	// same key, which the CA recognizes, instead of a stranger's.
	MetaJoinKey = "ca/join-key"
)

// Config is how a node's CA client behaves. Zero fields take defaults.
type Config struct {
	// JoinToken is what the node presents when it has no certificate.
	JoinToken string
	// Name is the name the node asks for in the cluster (its hostname).
	Name string
	// Managers are the managers to ask until Deps.Managers knows better.
	Managers []env.NodeID
	// Retry is how long a request may go unanswered before it is sent
	// again, to the next manager. Default 2s; it doubles per failure up
	// to 30s.
	Retry time.Duration
	// PollInterval is how often a node whose trust holds more than one
	// root (a root rotation) asks which roots to trust. Default 10s.
	PollInterval time.Duration
	// OnCertificate hears every certificate the node starts using (at
	// start, after a join or a renewal), on the node's loop: the simulator
	// sets its transport identity from it, realnet its TLS certificate.
	OnCertificate func(*Credentials)
	// OnDecision hears every admission decision the node takes on an
	// inbound message (the simulator counts a compromised node's
	// successes with it).
	OnDecision func(Decision)
	// Rand, when set, is where keys, serials and request IDs come from
	// instead of the node's env.Rand: the simulator gives the CA its own
	// named stream, so that certificates do not shift the draws of the
	// node's other parts.
	Rand env.Rand
	// Shared, when set, is where parsed roots and trust pools are shared
	// with the other nodes of the process (the simulator's cluster).
	Shared *Shared
}

// Defaults.
const (
	DefaultRetry        = 2 * time.Second
	DefaultPollInterval = 10 * time.Second
	maxRetry            = 30 * time.Second
	// renewLo and renewHi bound the point of a certificate's life where
	// its holder renews it, drawn uniformly so that certificates issued
	// together are not renewed together.
	renewLo, renewHi = 0.5, 0.8
	// rotationSpread bounds the random delay before a node renews for a
	// root rotation, so that a cluster does not ask all at once.
	rotationSpread = 2 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Retry <= 0 {
		c.Retry = DefaultRetry
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	return c
}

// Credentials are what a node holds: its certificate, its key and the
// roots it trusts. They are never changed once made; a renewal makes new
// ones. The key never leaves the node.
type Credentials struct {
	Cert  *Certificate
	Key   ed25519.PrivateKey
	Roots []*x509.Certificate
}

// Role is the role the certificate grants.
func (c *Credentials) Role() env.Role { return c.Cert.Peer.Role }

// Deps is what a Client needs from its node.
type Deps struct {
	Env    env.Env // ID, Loop, Clock, Rand, Transport, Storage
	Config Config
	// Managers lists the managers to ask now (the agent's list, which the
	// dispatcher keeps fresh). Nil or empty: Config.Managers.
	Managers func() []env.NodeID
	Logger   *slog.Logger
}

// ClientStats are counters for metrics and scenarios.
type ClientStats struct {
	Joins, Renewals  uint64 // certificates installed by a join / a renewal
	Requests         uint64 // issuance requests sent (retries included)
	Refusals         uint64 // issuance requests refused by a manager
	BadAnswers       uint64 // answers that failed verification (root digest, chain, key)
	RotationNotices  uint64
	RootPolls        uint64
	PeersRefused     uint64 // inbound certificates that failed verification
	MessagesRefused  uint64 // inbound messages refused by the admission check
	MessagesAdmitted uint64
}

// Client keeps one node's credentials: it loads them from the disk, joins
// with a token when there are none, renews them at a random point between
// 50% and 80% of their life (by the node's clock), renews them when the
// cluster wants another role or a root rotation runs, and verifies the
// certificates peers present. See the package documentation.
type Client struct {
	// What every inbound message reads (VerifyPeer, Admit, Role, Org) comes
	// first, together, copied out of e, cfg and creds: at 10,000 simulated
	// workers a worker's client has left the cache between two heartbeats,
	// and each of those objects was one more cache miss per message.
	trust      *TrustPool
	clock      env.Clock      // e.Clock, which the client reads only through this
	onDecision func(Decision) // cfg.OnDecision
	role       env.Role       // creds' role; rebuildTrust keeps it
	// org is creds' cluster, kept beside it: admission compares it on
	// every inbound message, and three pointers away it cost three cache
	// misses each time.
	org string
	id  env.NodeID
	// Stats.MessagesAdmitted and MessagesRefused, kept here.
	admitted, refusedMsgs uint64

	e       env.Env
	cfg     Config
	mgrsFn  func() []env.NodeID
	log     *slog.Logger
	running bool
	gen     uint64

	creds   *Credentials
	joinKey ed25519.PrivateKey // from disk, or drawn and kept before joining
	// storeRoots, on a manager, are the roots its store says the cluster
	// trusts; they take precedence over the roots on disk.
	storeRoots []*x509.Certificate
	// refused is why the cluster refused this node for good (a rotated
	// token, a removed node), nil otherwise.
	refused error

	issue      *request // a join or renewal in flight
	poll       *request // a GetRootCA in flight
	renewTimer env.Timer
	pollTimer  env.Timer
	nextMgr    int
	failures   int
	saving     bool // new credentials are being synced to disk
	ready      []func()

	stats ClientStats
}

type request struct {
	id    uint64
	key   ed25519.PrivateKey // the key the CSR is for
	csr   []byte
	to    env.NodeID
	timer env.Timer
	token bool // a join
}

// NewClient loads the node's credentials from its disk. It sends nothing
// until Start.
func NewClient(d Deps) (*Client, error) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := d.Env
	if d.Config.Rand != nil {
		e.Rand = d.Config.Rand
	}
	c := &Client{
		id:     d.Env.ID,
		e:      e,
		cfg:    d.Config.withDefaults(),
		mgrsFn: d.Managers,
		log:    log.With("component", "ca", "node", string(d.Env.ID)),
	}
	c.clock, c.onDecision = e.Clock, c.cfg.OnDecision
	st, err := d.Env.Storage.Load()
	if err != nil {
		return nil, fmt.Errorf("ca: load credentials: %w", err)
	}
	creds, err := credentialsFromMeta(st.Meta)
	if err != nil {
		return nil, fmt.Errorf("ca: credentials on disk: %w", err)
	}
	if k := st.Meta[MetaJoinKey]; len(k) > 0 && creds == nil {
		if c.joinKey, err = ParseKeyPEM(k); err != nil {
			return nil, fmt.Errorf("ca: join key on disk: %w", err)
		}
	}
	if creds != nil {
		if creds.Cert.Peer.ID != c.id {
			return nil, fmt.Errorf("ca: the certificate on disk is %s's, not %s's", creds.Cert.Peer.ID, c.id)
		}
		c.shareName(creds.Cert)
		c.creds = creds
		c.rebuildTrust()
	}
	return c, nil
}

// shareName makes cert, which names this node, hold the node's own string
// for that name: every peer check against the certificate compares it with
// the name the sender goes by (the node's, in the simulator), which is then
// two pointers instead of two strings' bytes.
func (c *Client) shareName(cert *Certificate) { cert.Peer.ID = c.id }

// credentialsFromMeta reads credentials from disk meta; nil when there
// are none.
func credentialsFromMeta(meta map[string][]byte) (*Credentials, error) {
	certPEM, keyPEM, rootsPEM := meta[MetaCert], meta[MetaKey], meta[MetaRoots]
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return nil, nil
	}
	certs, err := ParseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	roots, err := ParseCertsPEM(rootsPEM)
	if err != nil {
		return nil, fmt.Errorf("roots: %w", err)
	}
	cert, err := NewCertificate(certs[0], certs[1:])
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(cert.PublicKey(), key.Public().(ed25519.PublicKey)) {
		return nil, fmt.Errorf("%w: the key on disk is not the certificate's", ErrBadRequest)
	}
	return &Credentials{Cert: cert, Key: key, Roots: roots}, nil
}

// Provision writes credentials to a disk before its node first starts, as
// `swarmd init` does for the first manager (and the simulator for the
// managers of a fixed cluster). The caller syncs.
func Provision(s env.Storage, creds *Credentials) error {
	for _, kv := range metaOf(creds) {
		if kv.v == nil {
			continue
		}
		if err := s.SetMeta(kv.k, kv.v); err != nil {
			return err
		}
	}
	return nil
}

type metaKV struct {
	k string
	v []byte
}

func metaOf(creds *Credentials) []metaKV {
	return []metaKV{
		{MetaJoinKey, nil},
		{MetaKey, EncodeKeyPEM(creds.Key)},
		{MetaCert, EncodeCertsPEM(append([]*x509.Certificate{creds.Cert.Leaf}, creds.Cert.Chain...)...)},
		{MetaRoots, EncodeCertsPEM(creds.Roots...)},
	}
}

// Start announces the credentials from disk, or joins with the token.
func (c *Client) Start() {
	if c.running {
		return
	}
	c.running = true
	c.gen++
	if c.creds != nil {
		c.announce(false)
		return
	}
	if c.cfg.JoinToken == "" {
		c.refused = errors.New("no certificate on disk and no join token")
		c.log.Warn("cannot join", "err", c.refused)
		return
	}
	if c.joinKey != nil {
		c.send(true)
		return
	}
	c.joinKey = NewKey(c.e.Rand)
	if err := c.e.Storage.SetMeta(MetaJoinKey, EncodeKeyPEM(c.joinKey)); err != nil {
		c.log.Error("cannot stage the join key", "err", err)
		return
	}
	gen := c.gen
	c.e.Storage.Sync(func(err error) {
		if gen != c.gen || !c.running {
			return
		}
		if err != nil {
			c.log.Error("cannot save the join key", "err", err)
			return
		}
		c.send(true)
	})
}

// Stop silences the client: no request or timer follows.
func (c *Client) Stop() {
	if !c.running {
		return
	}
	c.running = false
	c.gen++
	for _, t := range []env.Timer{c.renewTimer, c.pollTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.renewTimer, c.pollTimer = nil, nil
	c.cancel(&c.issue)
	c.cancel(&c.poll)
}

func (c *Client) cancel(r **request) {
	if *r != nil && (*r).timer != nil {
		(*r).timer.Stop()
	}
	*r = nil
}

// Credentials are the node's current credentials, nil before it joined.
func (c *Client) Credentials() *Credentials { return c.creds }

// Ready reports whether the node holds a certificate.
func (c *Client) Ready() bool { return c.creds != nil }

// OnReady runs f once the node holds a certificate (at once if it does).
func (c *Client) OnReady(f func()) {
	if c.creds != nil {
		f()
		return
	}
	c.ready = append(c.ready, f)
}

// Role is the role the node's certificate grants (RoleNone before it
// joined).
func (c *Client) Role() env.Role { return c.role }

// Org is the cluster the node belongs to, "" before it joined.
func (c *Client) Org() string { return c.org }

// Refused is why the cluster refused this node for good (a rotated token,
// a removed node), nil otherwise.
func (c *Client) Refused() error { return c.refused }

// Stats returns the counters.
func (c *Client) Stats() ClientStats {
	s := c.stats
	s.MessagesAdmitted, s.MessagesRefused = c.admitted, c.refusedMsgs
	return s
}

// Rand is the client's source of randomness (the manager's CA server
// signs with it too).
func (c *Client) Rand() env.Rand { return c.e.Rand }

// Trust is the node's trust pool now.
func (c *Client) Trust() *TrustPool { return c.trust }

// WantRole tells the client the role the cluster wants this node to have
// (the dispatcher repeats it on every heartbeat): when the certificate
// grants another, it is renewed now, and the CA signs the new role.
func (c *Client) WantRole(r env.Role) {
	if !c.running || c.creds == nil || c.creds.Role() == r || c.issue != nil || c.saving {
		return
	}
	c.log.Info("renewing for a new role", "from", c.creds.Role(), "to", r)
	c.send(false)
}

// SetStoreRoots gives a manager the roots its store trusts; they replace
// the roots on disk for verification (nil: back to those).
func (c *Client) SetStoreRoots(roots []*x509.Certificate) {
	if sameCerts(roots, c.storeRoots) {
		return
	}
	c.storeRoots = roots
	c.rebuildTrust()
}

// rebuildTrust follows a change of credentials or store roots (every
// change of c.creds calls it).
func (c *Client) rebuildTrust() {
	c.role = env.RoleNone
	if c.creds != nil {
		c.org = c.creds.Cert.Peer.Org
		c.role = c.creds.Role()
	}
	roots := c.storeRoots
	if len(roots) == 0 && c.creds != nil {
		roots = c.creds.Roots
	}
	if c.trust == nil || !sameCerts(roots, c.trust.Roots()) {
		c.trust = c.cfg.Shared.pool(roots)
	}
	if c.org == c.trust.org {
		c.org = c.trust.org // the pool's string: see TrustPool.org
	}
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Raw, b[i].Raw) {
			return false
		}
	}
	return true
}

// VerifyPeer is the certificate check of a connection from the node
// called id that presents cert (nil: none): the identity to hand to the
// node's inbound path, or an error wrapping ErrUnauthenticated. A peer
// without a certificate, or any peer while this node trusts no root yet
// (it is joining), is RoleNone: the authorization table lets such a peer
// ask for a certificate and answer a joiner, nothing else.
func (c *Client) VerifyPeer(id env.NodeID, cert *Certificate) (env.Peer, error) {
	if cert == nil || c.trust.Empty() {
		return env.Peer{ID: id}, nil
	}
	p, err := c.trust.Verify(cert, c.clock.Now())
	if err == nil && id != "" && p.ID != id {
		err = fmt.Errorf("%w: %s presented the certificate of %s", ErrUnauthenticated, id, p.ID)
	}
	if err != nil {
		c.stats.PeersRefused++
		return env.Peer{}, err
	}
	return p, nil
}

// ---- requests

func (c *Client) managers() []env.NodeID {
	if c.mgrsFn != nil {
		if ms := c.mgrsFn(); len(ms) > 0 {
			return ms
		}
	}
	return c.cfg.Managers
}

func (c *Client) pickManager() env.NodeID {
	ms := c.managers()
	if len(ms) > 1 && slices.Contains(ms, c.id) {
		// A manager asks another: a joining one has no CA of its own yet
		// (its store holds no root until it caught up).
		ms = slices.DeleteFunc(slices.Clone(ms), func(id env.NodeID) bool { return id == c.id })
	}
	if len(ms) == 0 {
		return ""
	}
	if c.nextMgr == 0 {
		c.nextMgr = int(c.e.Rand.Int63n(int64(len(ms)))) + 1
	}
	m := ms[c.nextMgr%len(ms)]
	c.nextMgr++
	return m
}

func (c *Client) newRequestID() uint64 { return uint64(c.e.Rand.Int63n(1<<62)) + 1 }

// after arms a timer that does nothing once the client stopped.
func (c *Client) after(d time.Duration, f func()) env.Timer {
	gen := c.gen
	return c.clock.AfterFunc(d, func() {
		if gen == c.gen && c.running {
			f()
		}
	})
}

func (c *Client) jitter(d time.Duration, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * (lo + (hi-lo)*c.e.Rand.Float64()))
}

// send asks a manager for a certificate: a join (with the token) or a
// renewal. A new key is drawn for each new request; a retry of the same
// request sends the same CSR.
func (c *Client) send(join bool) {
	if c.issue == nil {
		key := c.joinKey
		if !join || key == nil {
			key = NewKey(c.e.Rand)
		}
		csr, err := NewCSR(key, c.e.Rand)
		if err != nil {
			c.log.Error("cannot make a CSR", "err", err)
			return
		}
		c.cfg.Shared.madeCSR(csr)
		c.issue = &request{id: c.newRequestID(), key: key, csr: csr, token: join}
	}
	r := c.issue
	if r.timer != nil {
		r.timer.Stop()
	}
	r.to = c.pickManager()
	if r.to != "" {
		msg := &api.IssueNodeCertificate{RequestId: r.id, Csr: r.csr}
		if r.token {
			msg.Token, msg.NodeId, msg.Name = c.cfg.JoinToken, string(c.id), c.cfg.Name
		}
		c.stats.Requests++
		c.e.Transport.Send(r.to, msg)
	}
	r.timer = c.after(c.backoff(), func() {
		c.failures++
		c.send(r.token)
	})
}

// backoff is the wait before a request is sent again: Retry, doubled per
// failure up to maxRetry, jittered.
func (c *Client) backoff() time.Duration {
	d := c.cfg.Retry
	for i := 0; i < c.failures && d < maxRetry; i++ {
		d *= 2
	}
	return c.jitter(min(d, maxRetry), 0.75, 1.25)
}

// Handle takes the CA's answers and notices; other messages are ignored.
func (c *Client) Handle(from env.Peer, m env.Message) {
	if !c.running {
		return
	}
	switch m := m.(type) {
	case *api.IssueNodeCertificateResponse:
		c.onIssued(from, m)
	case *api.GetRootCAResponse:
		c.onRoots(from, m)
	case *api.RootRotation:
		c.onRotation(from, m)
	}
}

func (c *Client) onIssued(from env.Peer, m *api.IssueNodeCertificateResponse) {
	r := c.issue
	if r == nil || m.GetRequestId() != r.id || c.saving {
		return // late, duplicate, or not ours
	}
	if m.GetError() != api.CAError_CA_ERROR_NONE {
		c.stats.Refusals++
		err := fmt.Errorf("%s: %s", m.GetError(), m.GetMessage())
		switch m.GetError() {
		case api.CAError_CA_ERROR_INVALID_TOKEN, api.CAError_CA_ERROR_NODE_REMOVED, api.CAError_CA_ERROR_NODE_EXISTS:
			// For good: asking again changes nothing.
			c.refused = err
			c.cancel(&c.issue)
			c.log.Warn("the cluster refused this node", "by", from.ID, "err", err)
		default:
			c.log.Info("certificate request refused; asking again", "by", from.ID, "err", err)
		}
		return
	}
	creds, err := c.checkIssued(from, r, m)
	if err != nil {
		c.stats.BadAnswers++
		c.log.Warn("certificate answer refused", "from", from.ID, "err", err)
		return // the retry timer asks another manager
	}
	c.cancel(&c.issue)
	c.failures = 0
	c.save(creds, r.token)
}

// checkIssued verifies an answer before anything in it is trusted. A
// joiner trusts the root whose digest its token names (and a root that
// root cross-signed); a member takes the roots an authenticated manager
// sends. Either way the leaf must chain to them, name this node, and
// carry the key of the request.
func (c *Client) checkIssued(from env.Peer, r *request, m *api.IssueNodeCertificateResponse) (*Credentials, error) {
	cert, err := ParseCertificate(m.GetCertificate(), m.GetChain())
	if err != nil {
		return nil, err
	}
	roots, err := c.cfg.Shared.parseRoots(m.GetRoots())
	if err != nil {
		return nil, err
	}
	if r.token {
		if roots, err = rootsForToken(c.cfg.JoinToken, roots, cert.Chain); err != nil {
			return nil, err
		}
	} else if from.Role != env.RoleManager {
		return nil, fmt.Errorf("%w: a renewal answered by %s as %s", ErrUnauthenticated, from.ID, from.Role)
	}
	if cert.Peer.ID != c.id {
		return nil, fmt.Errorf("%w: certificate names %s", ErrBadRequest, cert.Peer.ID)
	}
	c.shareName(cert)
	if !bytes.Equal(cert.PublicKey(), r.key.Public().(ed25519.PublicKey)) {
		return nil, fmt.Errorf("%w: certificate is not for the key requested", ErrBadRequest)
	}
	if c.creds != nil && cert.Peer.Org != c.creds.Cert.Peer.Org {
		return nil, fmt.Errorf("%w: certificate of cluster %s, not %s", ErrWrongCluster, cert.Peer.Org, c.creds.Cert.Peer.Org)
	}
	if v := c.cfg.Shared.pool(roots).chainVerdict(cert); v.err != nil {
		return nil, v.err
	}
	return &Credentials{Cert: cert, Key: r.key, Roots: roots}, nil
}

// parseRoots parses the roots an answer carries (DER).
func (s *Shared) parseRoots(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 || len(ders) > maxChain {
		return nil, fmt.Errorf("%w: %d roots", ErrBadRequest, len(ders))
	}
	out := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		x, err := s.parseRoot(d)
		if err != nil {
			return nil, fmt.Errorf("%w: root %d: %w", ErrBadRequest, i, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// rootsForToken keeps the roots a joiner may trust: the one whose digest
// the token names, and any other root that one cross-signed (chain holds
// the cross-signed certificates). Nothing else the answer says is
// trusted.
func rootsForToken(token string, roots, chain []*x509.Certificate) ([]*x509.Certificate, error) {
	t, err := ParseJoinToken(token)
	if err != nil {
		return nil, err
	}
	var pinned *x509.Certificate
	for _, r := range roots {
		if Digest(r) == t.Digest {
			pinned = r
		}
	}
	if pinned == nil {
		return nil, ErrRootMismatch
	}
	out := []*x509.Certificate{pinned}
	for _, r := range roots {
		if r == pinned {
			continue
		}
		for _, x := range chain {
			if bytes.Equal(x.SubjectKeyId, r.SubjectKeyId) && bytes.Equal(x.RawSubjectPublicKeyInfo, r.RawSubjectPublicKeyInfo) &&
				x.CheckSignatureFrom(pinned) == nil {
				out = append(out, r)
				break
			}
		}
	}
	return out, nil
}

// save makes new credentials durable, then uses them: a crash in between
// restarts with the old ones, which are still valid.
func (c *Client) save(creds *Credentials, join bool) {
	for _, kv := range metaOf(creds) {
		if err := c.e.Storage.SetMeta(kv.k, kv.v); err != nil {
			c.log.Error("cannot stage credentials", "err", err)
			return
		}
	}
	c.saving = true
	gen := c.gen
	c.e.Storage.Sync(func(err error) {
		if gen != c.gen || !c.running {
			return
		}
		c.saving = false
		if err != nil {
			c.log.Error("cannot save credentials", "err", err)
			return
		}
		c.creds = creds
		c.joinKey = nil
		c.rebuildTrust()
		if join {
			c.stats.Joins++
		} else {
			c.stats.Renewals++
		}
		c.announce(true)
	})
}

// announce tells the node which certificate it uses, releases what
// waited for one, and plans the renewal (and, while more than one root is
// trusted, the next poll).
func (c *Client) announce(fresh bool) {
	cert := c.creds.Cert
	c.log.Info("certificate in use", "role", cert.Peer.Role, "not_after", cert.Leaf.NotAfter.UTC(), "fresh", fresh)
	if c.cfg.OnCertificate != nil {
		c.cfg.OnCertificate(c.creds)
	}
	ready := c.ready
	c.ready = nil
	for _, f := range ready {
		f()
	}
	c.scheduleRenewal()
	if len(c.creds.Roots) > 1 {
		c.schedulePoll(c.jitter(c.cfg.PollInterval, 0, 0.5))
	}
}

// scheduleRenewal plans the next renewal at a random point between 50%
// and 80% of the certificate's life, by this node's clock: a node whose
// clock runs ahead renews early, one that finds its certificate already
// past that point (or expired) renews at once, and the manager, whose
// clock decides, still accepts it if it is valid there.
func (c *Client) scheduleRenewal() {
	if c.renewTimer != nil {
		c.renewTimer.Stop()
	}
	leaf := c.creds.Cert.Leaf
	issued := c.creds.Cert.IssuedAt()
	life := leaf.NotAfter.Sub(issued)
	frac := renewLo + (renewHi-renewLo)*c.e.Rand.Float64()
	d := issued.Add(time.Duration(float64(life) * frac)).Sub(c.clock.Now())
	if d < 0 {
		d = c.jitter(c.cfg.Retry, 0, 1)
	}
	c.renewTimer = c.after(d, func() {
		c.renewTimer = nil
		if c.issue == nil && !c.saving {
			c.send(false)
		}
	})
}

// ---- root rotation

func (c *Client) schedulePoll(d time.Duration) {
	if c.pollTimer != nil {
		c.pollTimer.Stop()
	}
	c.pollTimer = c.after(d, func() {
		c.pollTimer = nil
		c.sendPoll()
	})
}

// sendPoll asks which roots to trust now, telling the leaf in use.
func (c *Client) sendPoll() {
	if c.creds == nil {
		return
	}
	to := c.pickManager()
	if to == "" {
		return
	}
	c.poll = &request{id: c.newRequestID(), to: to}
	c.stats.RootPolls++
	c.e.Transport.Send(to, &api.GetRootCA{RequestId: c.poll.id, Certificate: c.creds.Cert.Leaf.Raw})
	// Polls repeat while the node trusts more than one root; one lost
	// is replaced by the next.
	c.schedulePoll(c.jitter(c.cfg.PollInterval, 0.5, 1.5))
}

func (c *Client) onRoots(from env.Peer, m *api.GetRootCAResponse) {
	if c.poll == nil || m.GetRequestId() != c.poll.id || from.Role != env.RoleManager || c.creds == nil || c.saving {
		return
	}
	c.poll = nil
	c.takeRoots(m.GetRoots(), m.GetSigningRoot())
}

func (c *Client) onRotation(from env.Peer, m *api.RootRotation) {
	if from.Role != env.RoleManager || c.creds == nil || c.saving {
		return // while saving: the leader sends the notice again
	}
	c.stats.RotationNotices++
	c.takeRoots(m.GetRoots(), m.GetSigningRoot())
}

// takeRoots adopts the roots an authenticated manager says to trust, as
// long as they still verify this node's own certificate; and renews when
// the certificate is not signed by the root that signs now.
func (c *Client) takeRoots(rootDERs [][]byte, signingDER []byte) {
	roots, err := c.cfg.Shared.parseRoots(rootDERs)
	if err != nil {
		c.stats.BadAnswers++
		return
	}
	var signing *x509.Certificate
	if len(signingDER) > 0 {
		if signing, err = x509.ParseCertificate(signingDER); err != nil {
			c.stats.BadAnswers++
			return
		}
	}
	renew := signing != nil && !c.creds.Cert.IssuedBy(signing)
	if c.cfg.Shared.pool(roots).chainVerdict(c.creds.Cert).err != nil {
		// Our certificate would not verify under those roots: keep both
		// sets until we hold one that does.
		roots = unionCerts(c.creds.Roots, roots)
		renew = true
	}
	if !sameCerts(roots, c.creds.Roots) {
		next := &Credentials{Cert: c.creds.Cert, Key: c.creds.Key, Roots: roots}
		c.creds = next
		c.rebuildTrust()
		_ = c.e.Storage.SetMeta(MetaRoots, EncodeCertsPEM(roots...))
		c.e.Storage.Sync(func(error) {})
	}
	switch {
	case renew && c.issue == nil && !c.saving:
		if c.renewTimer != nil {
			c.renewTimer.Stop()
		}
		c.renewTimer = c.after(c.jitter(rotationSpread, 0, 1), func() {
			c.renewTimer = nil
			if c.issue == nil && !c.saving {
				c.send(false)
			}
		})
	case len(c.creds.Roots) > 1 && c.pollTimer == nil:
		c.schedulePoll(c.jitter(c.cfg.PollInterval, 0, 0.5))
	}
}

func unionCerts(a, b []*x509.Certificate) []*x509.Certificate {
	out := append([]*x509.Certificate(nil), a...)
	for _, x := range b {
		found := false
		for _, y := range out {
			if bytes.Equal(x.Raw, y.Raw) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}
