package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/store"
)

// ServerDeps is what a Server needs from its manager.
type ServerDeps struct {
	Env       env.Env // ID, Loop, Clock, Rand, Transport
	Store     *store.Store
	ClusterID string // the ID of the store's Cluster object
	// Client is this manager's own CA client: it trusts the roots the
	// store holds.
	Client *Client
	// ReconcileInterval is how often the leader looks at a root rotation's
	// progress and reminds the nodes still on the old root. Default 5s.
	ReconcileInterval time.Duration
	// MaxNotices bounds the rotation notices one reconcile pass sends.
	// Default 1000.
	MaxNotices int
	Logger     *slog.Logger
}

// ServerStats are counters for metrics and scenarios.
type ServerStats struct {
	Issued, Joined    uint64 // certificates signed; of which for joins
	Refused           uint64 // requests refused
	RotationsStarted  uint64
	RotationsFinished uint64
	NoticesSent       uint64
	TokenRotations    uint64
}

// ErrRotationInProgress: a root rotation was asked for while one runs.
var ErrRotationInProgress = errors.New("a root rotation is in progress")

// Server is a manager's side of the CA protocol: every manager signs
// (the root key is in the replicated store), and the leader also drives
// root rotations to their end. See the package documentation.
type Server struct {
	e         env.Env
	st        *store.Store
	clusterID string
	client    *Client
	log       *slog.Logger
	interval  time.Duration
	maxNotice int

	// What the store's Cluster object says, parsed once per change of it.
	seen    *api.Cluster
	signer  *RootCA           // signs new certificates: the new root while rotating
	current *RootCA           // the root (trusted by every node)
	cross   *x509.Certificate // the new root cross-signed by the current, while rotating
	roots   []*x509.Certificate

	cancelWatch func()
	leader      bool
	gen         uint64
	timer       env.Timer
	writing     map[string]bool // node certificates being recorded
	joins       []pendingJoin
	joinTimer   env.Timer
	finishing   bool
	// rotated caches, per node, whether the certificate its node object
	// records is the signer's, so a reconcile pass verifies each one once.
	rotated    map[string]rotatedVerdict
	noticeFrom int

	stats ServerStats
}

type rotatedVerdict struct {
	der []byte
	ok  bool
}

// NewServer returns a manager's CA server; it watches the store for the
// cluster's roots from now on. It signs from any manager; Start makes it
// drive root rotations (the manager became leader).
func NewServer(d ServerDeps) *Server {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		e: d.Env, st: d.Store, clusterID: d.ClusterID, client: d.Client,
		log:       log.With("component", "ca-server", "node", string(d.Env.ID)),
		interval:  d.ReconcileInterval,
		maxNotice: d.MaxNotices,
		writing:   map[string]bool{},
		rotated:   map[string]rotatedVerdict{},
	}
	if d.Client != nil {
		s.e.Rand = d.Client.Rand()
	}
	if s.interval <= 0 {
		s.interval = 5 * time.Second
	}
	if s.maxNotice <= 0 {
		s.maxNotice = 1000
	}
	s.cancelWatch = s.st.WatchKinds(store.KindSetOf(store.KindCluster), func(evs []store.Event) {
		for _, ev := range evs {
			if ev.Kind == store.KindCluster || ev.Action == store.ActionRestore {
				s.refresh()
				return
			}
		}
	})
	s.refresh()
	return s
}

// Close stops watching the store (the manager stops); the node's client
// goes back to the roots on its disk.
func (s *Server) Close() {
	s.Stop()
	if s.cancelWatch != nil {
		s.cancelWatch()
		s.cancelWatch = nil
	}
	if s.client != nil {
		s.client.SetStoreRoots(nil)
	}
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats { return s.stats }

// shared is what this manager's node shares with the other nodes of its
// process (nil for a real node).
func (s *Server) shared() *Shared {
	if s.client == nil {
		return nil
	}
	return s.client.cfg.Shared
}

// Handles reports whether m is a request the CA server answers.
func Handles(m env.Message) bool {
	switch m.(type) {
	case *api.IssueNodeCertificate, *api.GetRootCA:
		return true
	}
	return false
}

// HandlesAnswer reports whether m is an answer or notice a node's CA
// client takes.
func HandlesAnswer(m env.Message) bool {
	switch m.(type) {
	case *api.IssueNodeCertificateResponse, *api.GetRootCAResponse, *api.RootRotation:
		return true
	}
	return false
}

// refresh parses the cluster's roots when the Cluster object changed, and
// gives this manager's client the roots to trust.
func (s *Server) refresh() {
	cl := s.st.Cluster(s.clusterID)
	if cl == s.seen {
		return
	}
	s.seen = cl
	s.signer, s.current, s.cross, s.roots = nil, nil, nil, nil
	clear(s.rotated)
	rc := cl.GetRootCa()
	if len(rc.GetCaCert()) == 0 {
		return
	}
	cur, err := ParseRootCA(rc.GetCaCert(), rc.GetCaKey())
	if err != nil {
		s.log.Error("the cluster's root CA does not parse", "err", err)
		return
	}
	s.current, s.signer, s.roots = cur, cur, []*x509.Certificate{cur.Cert}
	if rc.GetRotationInProgress() {
		next, err := ParseRootCA(rc.GetNewCaCert(), rc.GetNewCaKey())
		if err != nil {
			s.log.Error("the rotation's new root does not parse", "err", err)
			return
		}
		cross, err := ParseCertsPEM(rc.GetCrossSignedCert())
		if err != nil {
			s.log.Error("the rotation's cross-signed root does not parse", "err", err)
			return
		}
		s.signer, s.cross = next, cross[0]
		s.roots = []*x509.Certificate{cur.Cert, next.Cert}
	}
	if s.client != nil {
		s.client.SetStoreRoots(s.roots)
	}
}

// Roots are the roots the cluster trusts now (both during a rotation).
func (s *Server) Roots() []*x509.Certificate {
	s.refresh()
	return s.roots
}

// SigningRoot is the root new certificates are signed by, nil before the
// store holds a cluster CA.
func (s *Server) SigningRoot() *x509.Certificate {
	s.refresh()
	if s.signer == nil {
		return nil
	}
	return s.signer.Cert
}

// Rotating reports whether a root rotation runs.
func (s *Server) Rotating() bool {
	s.refresh()
	return s.cross != nil
}

// JoinTokens are the cluster's current join tokens (nil before the
// cluster exists).
func (s *Server) JoinTokens() *api.JoinTokens {
	return s.st.Cluster(s.clusterID).GetJoinTokens()
}

// Handle answers a CA request. Requests of other kinds are ignored.
func (s *Server) Handle(from env.Peer, m env.Message) {
	switch m := m.(type) {
	case *api.IssueNodeCertificate:
		s.handleIssue(from, m)
	case *api.GetRootCA:
		s.handleGetRoot(from, m)
	}
}

func roleOfNode(n *api.Node) env.Role {
	if n.GetSpec().GetDesiredRole() == api.NodeRole_NODE_ROLE_MANAGER {
		return env.RoleManager
	}
	return env.RoleWorker
}

func apiRole(r env.Role) api.NodeRole {
	if r == env.RoleManager {
		return api.NodeRole_NODE_ROLE_MANAGER
	}
	return api.NodeRole_NODE_ROLE_WORKER
}

func (s *Server) handleIssue(from env.Peer, req *api.IssueNodeCertificate) {
	refuse := func(code api.CAError, err error) {
		s.stats.Refused++
		s.log.Info("certificate request refused", "from", from.ID, "code", code, "err", err)
		s.e.Transport.Send(from.ID, &api.IssueNodeCertificateResponse{RequestId: req.GetRequestId(), Error: code, Message: err.Error()})
	}
	s.refresh()
	cl := s.st.Cluster(s.clusterID)
	if s.signer == nil || s.signer.Key == nil {
		refuse(api.CAError_CA_ERROR_UNAVAILABLE, errors.New("no cluster CA here yet"))
		return
	}
	pub, err := parseCSR(req.GetCsr(), !s.shared().tookCSR(req.GetCsr()))
	if err != nil {
		refuse(api.CAError_CA_ERROR_BAD_REQUEST, err)
		return
	}
	expiry := time.Duration(cl.GetSpec().GetCa().GetNodeCertExpiry())

	if req.GetToken() == "" {
		// A renewal: the presented certificate says who; the store says
		// which role the cluster wants now (promote/demote).
		if from.Role == env.RoleNone {
			refuse(api.CAError_CA_ERROR_BAD_REQUEST, fmt.Errorf("%w: no certificate and no token", ErrUnauthenticated))
			return
		}
		role := from.Role
		if n := s.st.Node(string(from.ID)); n != nil {
			if n.GetRemoved() {
				refuse(api.CAError_CA_ERROR_NODE_REMOVED, fmt.Errorf("%w: %s", ErrNodeRemoved, from.ID))
				return
			}
			role = roleOfNode(n)
		}
		s.answer(from.ID, req.GetRequestId(), pub, from.ID, role, expiry)
		return
	}

	// A join: the token says the role.
	role := RoleOfToken(req.GetToken(), cl.GetJoinTokens())
	if role == env.RoleNone {
		refuse(api.CAError_CA_ERROR_INVALID_TOKEN, ErrInvalidToken)
		return
	}
	id := env.NodeID(req.GetNodeId())
	if err := ValidNodeID(string(id)); err != nil {
		refuse(api.CAError_CA_ERROR_BAD_REQUEST, err)
		return
	}
	if from.ID != "" && from.ID != id {
		refuse(api.CAError_CA_ERROR_BAD_REQUEST, fmt.Errorf("%w: %s asks for the ID %s", ErrBadRequest, from.ID, id))
		return
	}
	if code, err := s.checkJoinID(s.st, id, pub); err != nil {
		refuse(code, err)
		return
	} else if s.st.Node(string(id)) != nil {
		// The joiner asked again (its answer was lost): same key, same
		// node, sign again.
		s.answer(id, req.GetRequestId(), pub, id, roleOfNode(s.st.Node(string(id))), expiry)
		return
	}
	leaf, err := s.signer.IssueDER(pub, id, role, s.e.Clock.Now(), expiry, s.e.Rand)
	if err != nil {
		refuse(api.CAError_CA_ERROR_BAD_REQUEST, err)
		return
	}
	s.shared().madeCert(leaf, s.signer.Cert)
	s.queueJoin(pendingJoin{from: from.ID, reqID: req.GetRequestId(), id: id, name: req.GetName(), role: role, pub: pub, leaf: leaf})
}

// pendingJoin is a signed join waiting for its node to be recorded.
type pendingJoin struct {
	from  env.NodeID
	reqID uint64
	id    env.NodeID
	name  string
	role  env.Role
	pub   []byte
	leaf  []byte // the certificate signed, DER
	// refusal is set inside the transaction when the ID turned out taken.
	code api.CAError
	err  error
}

// Joins are recorded in batches: a cluster of thousands of workers joining
// at once costs a few proposals, not one each.
const (
	joinBatchWindow = 50 * time.Millisecond
	maxJoinBatch    = 500 // ~0.3 MB of node objects, well under a proposal's limit
)

func (s *Server) queueJoin(j pendingJoin) {
	s.joins = append(s.joins, j)
	if len(s.joins) >= maxJoinBatch {
		s.flushJoins()
		return
	}
	if s.joinTimer == nil {
		s.joinTimer = s.e.Clock.AfterFunc(joinBatchWindow, func() {
			s.joinTimer = nil
			s.flushJoins()
		})
	}
}

// flushJoins records the queued joiners' nodes in one transaction, then
// answers each: its certificate, or why its ID was refused.
func (s *Server) flushJoins() {
	if s.joinTimer != nil {
		s.joinTimer.Stop()
		s.joinTimer = nil
	}
	batch := s.joins
	s.joins = nil
	if len(batch) == 0 {
		return
	}
	s.st.Update(func(tx *store.Tx) error {
		for i := range batch {
			j := &batch[i]
			j.code, j.err = s.checkJoinID(tx, j.id, j.pub)
			if j.err != nil || tx.Node(string(j.id)) != nil {
				continue // refused, or recorded by an earlier copy of the request
			}
			if err := tx.Create(&api.Node{
				Id:          string(j.id),
				Spec:        &api.NodeSpec{Name: j.name, DesiredRole: apiRole(j.role)},
				Role:        apiRole(j.role),
				Certificate: j.leaf,
			}); err != nil {
				return err
			}
		}
		return nil
	}, func(txErr error) {
		for _, j := range batch {
			var code api.CAError
			var err error
			switch {
			case j.err != nil:
				code, err = j.code, j.err
			case txErr != nil:
				code, err = api.CAError_CA_ERROR_UNAVAILABLE, fmt.Errorf("recording node %s: %w", j.id, txErr)
			}
			if err != nil {
				s.stats.Refused++
				s.log.Info("join refused", "node", j.id, "code", code, "err", err)
				s.e.Transport.Send(j.from, &api.IssueNodeCertificateResponse{RequestId: j.reqID, Error: code, Message: err.Error()})
				continue
			}
			s.stats.Joined++
			s.log.Info("node joined", "node", j.id, "role", j.role)
			s.send(j.from, j.reqID, j.leaf)
		}
	})
}

// checkJoinID refuses a join that names a removed node, or a node that
// exists under another key; a node that exists with the same key is the
// joiner asking again.
func (s *Server) checkJoinID(r NodeReader, id env.NodeID, pub []byte) (api.CAError, error) {
	n := r.Node(string(id))
	switch {
	case n == nil:
		return api.CAError_CA_ERROR_NONE, nil
	case n.GetRemoved():
		return api.CAError_CA_ERROR_NODE_REMOVED, fmt.Errorf("%w: %s cannot join again", ErrNodeRemoved, id)
	}
	if old, err := x509.ParseCertificate(n.GetCertificate()); err == nil && bytes.Equal(publicKey(old), pub) {
		return api.CAError_CA_ERROR_NONE, nil
	}
	return api.CAError_CA_ERROR_NODE_EXISTS, fmt.Errorf("node %s already exists", id)
}

// answer signs and sends a certificate.
func (s *Server) answer(to env.NodeID, reqID uint64, pub []byte, id env.NodeID, role env.Role, expiry time.Duration) {
	leaf, err := s.signer.IssueDER(pub, id, role, s.e.Clock.Now(), expiry, s.e.Rand)
	if err != nil {
		s.stats.Refused++
		s.e.Transport.Send(to, &api.IssueNodeCertificateResponse{RequestId: reqID, Error: api.CAError_CA_ERROR_BAD_REQUEST, Message: err.Error()})
		return
	}
	s.shared().madeCert(leaf, s.signer.Cert)
	s.send(to, reqID, leaf)
}

func (s *Server) send(to env.NodeID, reqID uint64, leaf []byte) {
	s.stats.Issued++
	resp := &api.IssueNodeCertificateResponse{RequestId: reqID, Certificate: leaf, Roots: derOf(s.roots)}
	if s.cross != nil && s.signer != s.current {
		resp.Chain = [][]byte{s.cross.Raw}
	}
	s.e.Transport.Send(to, resp)
}

func derOf(cs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Raw
	}
	return out
}

// handleGetRoot answers which roots to trust, and during a rotation
// records the certificate the sender says it now uses, once it is the new
// root's: the rotation finishes when every node's is.
func (s *Server) handleGetRoot(from env.Peer, req *api.GetRootCA) {
	s.refresh()
	if len(s.roots) == 0 {
		return
	}
	s.e.Transport.Send(from.ID, &api.GetRootCAResponse{
		RequestId: req.GetRequestId(), Roots: derOf(s.roots), SigningRoot: s.signer.Cert.Raw,
	})
	if s.cross == nil || from.Role == env.RoleNone || len(req.GetCertificate()) == 0 {
		return
	}
	s.recordInUse(from.ID, req.GetCertificate())
}

func (s *Server) recordInUse(id env.NodeID, der []byte) {
	n := s.st.Node(string(id))
	if n == nil || n.GetRemoved() || bytes.Equal(n.GetCertificate(), der) || s.writing[string(id)] {
		return
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil || leaf.Subject.CommonName != string(id) || leaf.CheckSignatureFrom(s.signer.Cert) != nil {
		return // not a certificate of the new root for this node
	}
	s.writing[string(id)] = true
	s.st.Update(func(tx *store.Tx) error {
		cur := tx.Node(string(id))
		if cur == nil || cur.GetRemoved() || bytes.Equal(cur.GetCertificate(), der) {
			return nil
		}
		c := cur.ShallowCopy()
		c.Certificate = der
		return tx.Update(c)
	}, func(err error) {
		delete(s.writing, string(id))
		if err != nil {
			s.log.Debug("recording a node's certificate failed", "node", id, "err", err)
		}
	})
}

// ---- join tokens and root rotation (control API calls)

// RotateJoinToken replaces the join token of role: the old one stops
// working once the change applies.
func (s *Server) RotateJoinToken(role env.Role, done func(error)) {
	s.st.Update(func(tx *store.Tx) error {
		cl := tx.Cluster(s.clusterID)
		if cl == nil || len(cl.GetRootCa().GetCaCert()) == 0 {
			return errors.New("rotate join token: no cluster CA yet")
		}
		root, err := ParseRootCA(cl.GetRootCa().GetCaCert(), nil)
		if err != nil {
			return fmt.Errorf("rotate join token: %w", err)
		}
		tokens := &api.JoinTokens{Worker: cl.GetJoinTokens().GetWorker(), Manager: cl.GetJoinTokens().GetManager()}
		switch role {
		case env.RoleWorker:
			tokens.Worker = NewJoinToken(root.Cert, s.e.Rand)
		case env.RoleManager:
			tokens.Manager = NewJoinToken(root.Cert, s.e.Rand)
		default:
			return fmt.Errorf("rotate join token: no token for role %s", role)
		}
		c := cl.ShallowCopy()
		c.JoinTokens = tokens
		return tx.Update(c)
	}, func(err error) {
		if err == nil {
			s.stats.TokenRotations++
		}
		done(err)
	})
}

// RotateRootCA starts a root rotation: a new root, cross-signed by the
// current one, signs every certificate from now on; the leader reminds
// the nodes to renew and finishes the rotation once every node uses a
// certificate of the new root.
func (s *Server) RotateRootCA(done func(error)) {
	now := s.e.Clock.Now()
	s.st.Update(func(tx *store.Tx) error {
		cl := tx.Cluster(s.clusterID)
		rc := cl.GetRootCa()
		if len(rc.GetCaCert()) == 0 {
			return errors.New("rotate root CA: no cluster CA yet")
		}
		if rc.GetRotationInProgress() {
			return ErrRotationInProgress
		}
		cur, err := ParseRootCA(rc.GetCaCert(), rc.GetCaKey())
		if err != nil {
			return fmt.Errorf("rotate root CA: %w", err)
		}
		next, cross, err := cur.NewRotation(s.e.Rand, now)
		if err != nil {
			return fmt.Errorf("rotate root CA: %w", err)
		}
		c := cl.ShallowCopy()
		c.RootCa = &api.RootCA{
			CaCert:             rc.GetCaCert(),
			CaKey:              rc.GetCaKey(),
			Digest:             rc.GetDigest(),
			CrossSignedCert:    EncodeCertsPEM(cross),
			NewCaCert:          EncodeCertsPEM(next.Cert),
			NewCaKey:           EncodeKeyPEM(next.Key),
			RotationInProgress: true,
		}
		return tx.Update(c)
	}, func(err error) {
		if err == nil {
			s.stats.RotationsStarted++
			s.log.Info("root rotation started")
			s.kick()
		}
		done(err)
	})
}

// ---- the leader's rotation reconciler

// Start makes this server drive root rotations: the manager became
// leader.
func (s *Server) Start() {
	if s.leader {
		return
	}
	s.leader = true
	s.gen++
	s.arm(s.interval)
}

// Stop ends the leader's part: leadership lost or shutdown. Writes in
// flight finish, but nothing follows them.
func (s *Server) Stop() {
	if !s.leader {
		return
	}
	s.leader = false
	s.gen++
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.finishing = false
}

func (s *Server) arm(d time.Duration) {
	if s.timer != nil {
		s.timer.Stop()
	}
	gen := s.gen
	s.timer = s.e.Clock.AfterFunc(d, func() {
		if gen != s.gen || !s.leader {
			return
		}
		s.timer = nil
		s.reconcile()
		s.arm(s.interval)
	})
}

// kick runs a reconcile pass soon (a rotation just started).
func (s *Server) kick() {
	if s.leader {
		s.arm(0)
	}
}

// reconcile finishes the rotation when every live node's recorded
// certificate is the new root's, and otherwise reminds the others (at most
// MaxNotices per pass, in ID order from where the last pass stopped).
func (s *Server) reconcile() {
	s.refresh()
	if s.cross == nil || s.finishing {
		return
	}
	var laggards []string
	for n := range s.st.EachNode() {
		if n.GetRemoved() || s.isRotated(n) {
			continue
		}
		laggards = append(laggards, n.Id)
	}
	if len(laggards) == 0 {
		s.finish()
		return
	}
	notice := &api.RootRotation{Roots: derOf(s.roots), SigningRoot: s.signer.Cert.Raw}
	start := s.noticeFrom % len(laggards)
	for i := range min(len(laggards), s.maxNotice) {
		id := laggards[(start+i)%len(laggards)]
		s.stats.NoticesSent++
		s.e.Transport.Send(env.NodeID(id), notice)
	}
	s.noticeFrom = start + s.maxNotice
}

func (s *Server) isRotated(n *api.Node) bool {
	der := n.GetCertificate()
	if v, ok := s.rotated[n.Id]; ok && bytes.Equal(v.der, der) {
		return v.ok
	}
	ok := false
	if leaf, err := x509.ParseCertificate(der); err == nil {
		ok = leaf.CheckSignatureFrom(s.signer.Cert) == nil
	}
	s.rotated[n.Id] = rotatedVerdict{der: der, ok: ok}
	return ok
}

// finish makes the new root the only one, and draws new join tokens
// (their digest names the root a joiner must find).
func (s *Server) finish() {
	s.finishing = true
	gen := s.gen
	want := s.seen
	s.st.Update(func(tx *store.Tx) error {
		cl := tx.Cluster(s.clusterID)
		if cl != want {
			return errors.New("the cluster changed meanwhile")
		}
		rc := cl.GetRootCa()
		next, err := ParseRootCA(rc.GetNewCaCert(), rc.GetNewCaKey())
		if err != nil {
			return err
		}
		c := cl.ShallowCopy()
		c.RootCa = &api.RootCA{CaCert: rc.GetNewCaCert(), CaKey: rc.GetNewCaKey(), Digest: next.Digest()}
		c.JoinTokens = NewJoinTokens(next.Cert, s.e.Rand)
		return tx.Update(c)
	}, func(err error) {
		if gen != s.gen {
			return
		}
		s.finishing = false
		if err != nil {
			s.log.Info("finishing the root rotation failed; trying again", "err", err)
			return
		}
		s.stats.RotationsFinished++
		s.log.Info("root rotation finished")
	})
}

// ---- bootstrap

// Bootstrap is what `swarmd init` makes before the first manager starts:
// the root, the first manager's credentials and the join tokens. In the
// simulator, the cluster builder makes one for the managers of a fixed
// cluster (IssueBootstrap for each).
type Bootstrap struct {
	Root   *RootCA
	Tokens *api.JoinTokens
}

// NewBootstrap creates a cluster's root CA and join tokens.
func NewBootstrap(r env.Rand, now time.Time) (*Bootstrap, error) {
	root, err := NewRootCA(r, now)
	if err != nil {
		return nil, err
	}
	return &Bootstrap{Root: root, Tokens: NewJoinTokens(root.Cert, r)}, nil
}

// RootCA is the store's form of the bootstrap root, for the Cluster
// object the first leader writes.
func (b *Bootstrap) RootCA() *api.RootCA {
	return &api.RootCA{CaCert: EncodeCertsPEM(b.Root.Cert), CaKey: EncodeKeyPEM(b.Root.Key), Digest: b.Root.Digest()}
}

// Issue makes the credentials of one of the cluster's first nodes.
func (b *Bootstrap) Issue(id env.NodeID, role env.Role, r env.Rand, now time.Time, expiry time.Duration) (*Credentials, error) {
	key := NewKey(r)
	leaf, err := b.Root.Issue(key.Public().(ed25519.PublicKey), id, role, now, expiry, r)
	if err != nil {
		return nil, err
	}
	cert, err := NewCertificate(leaf, nil)
	if err != nil {
		return nil, err
	}
	return &Credentials{Cert: cert, Key: key, Roots: []*x509.Certificate{b.Root.Cert}}, nil
}
