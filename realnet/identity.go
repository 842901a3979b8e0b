package realnet

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
)

// The hello headers: what a node says about itself in the metadata of
// every stream and RPC it opens. Without TLS they are the only identity
// there is, and unauthenticated; with TLS the certificate is the identity
// and only the address is read from them.
const (
	HeaderNodeID = "swarm-node-id"
	HeaderRole   = "swarm-role"
	HeaderAddr   = "swarm-addr"
	HeaderToken  = "swarm-join-token"
)

// Certificate subjects: CN is the node ID, OU the role, O the cluster, as
// in SwarmKit.
const (
	OUManager = "swarm-manager"
	OUWorker  = "swarm-worker"
)

// Errors of identification and authorization; they wrap into gRPC
// Unauthenticated and PermissionDenied.
var (
	ErrUnauthenticated  = errors.New("unauthenticated")
	ErrPermissionDenied = errors.New("permission denied")
)

// Hello is what a peer said about itself.
type Hello struct {
	NodeID env.NodeID
	Role   env.Role // as claimed
	Addr   string
	Token  string
}

// Admitter decides who a peer without a certificate is, from its hello:
// the join-token check. It runs when a stream opens and again for every
// message, so a node removed since, or promoted since, is seen as it is
// now. The security work replaces it with certificates.
type Admitter interface {
	Admit(h Hello) (env.Peer, error)
}

// AdmitFunc adapts a function to Admitter.
type AdmitFunc func(Hello) (env.Peer, error)

// Admit implements Admitter.
func (f AdmitFunc) Admit(h Hello) (env.Peer, error) { return f(h) }

// TrustClaims admits every peer as what it claims to be. A worker uses it
// (it has neither the store nor the manager token to check a manager
// with); the identity stays unauthenticated (Org empty).
var TrustClaims = AdmitFunc(func(h Hello) (env.Peer, error) {
	if h.NodeID == "" {
		return env.Peer{}, fmt.Errorf("%w: no node ID in the hello", ErrUnauthenticated)
	}
	return env.Peer{ID: h.NodeID, Role: h.Role}, nil
})

// Authorizer says whether peer p may use method: an engine message's
// Method() or a unary RPC's full method name. Every inbound message and
// every RPC goes through it.
type Authorizer func(p env.Peer, method string) error

// AllowAll is the Authorizer of a transport given none (tests); swarmd
// always gives one.
func AllowAll(env.Peer, string) error { return nil }

// RoleTable maps methods to the roles allowed to use them. A method not in
// the table is allowed to every identified peer when Strict is false.
type RoleTable struct {
	Roles  map[string][]env.Role
	Strict bool
}

// Authorize implements Authorizer.
func (t RoleTable) Authorize(p env.Peer, method string) error {
	roles, ok := t.Roles[method]
	if !ok {
		if t.Strict {
			return fmt.Errorf("%w: %s is not in the authorization table", ErrPermissionDenied, method)
		}
		return nil
	}
	if slices.Contains(roles, p.Role) {
		return nil
	}
	return fmt.Errorf("%w: %s may not call %s as %s", ErrPermissionDenied, p.ID, method, p.Role)
}

// JoinTable is the least authorization that makes join tokens mean
// something: only managers speak raft and join it, and only admitted nodes
// (worker or manager token, or known to the cluster) open dispatcher
// sessions. Everything else is allowed. swarmd uses it only without the
// cluster CA (--tls off, or static certificates); under the CA, engine/ca's
// table decides every method and fails closed.
func JoinTable() RoleTable {
	mgr := []env.Role{env.RoleManager}
	node := []env.Role{env.RoleWorker, env.RoleManager}
	return RoleTable{Roles: map[string][]env.Role{
		raft.MethodStep:             mgr,
		api.MethodRaftJoin:          mgr,
		api.MethodRaftJoinResponse:  mgr,
		api.MethodSessionRequest:    node,
		api.MethodHeartbeat:         node,
		api.MethodTaskStatusReport:  node,
		api.MethodSessionResponse:   mgr,
		api.MethodHeartbeatResponse: mgr,
		api.MethodAssignments:       mgr,
		api.MethodTaskStatusAck:     mgr,
	}}
}

// TokenMatches compares a presented token with the expected one in
// constant time; an empty expected token matches nothing.
func TokenMatches(presented, expected string) bool {
	if expected == "" || len(presented) != len(expected) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(expected)) == 1
}

// RoleOfToken says which role a join token grants: manager, worker, or
// none.
func RoleOfToken(token string, tokens *api.JoinTokens) env.Role {
	switch {
	case TokenMatches(token, tokens.GetManager()):
		return env.RoleManager
	case TokenMatches(token, tokens.GetWorker()):
		return env.RoleWorker
	}
	return env.RoleNone
}

// PeerFromCert reads a node's identity from its verified certificate.
func PeerFromCert(c *x509.Certificate) (env.Peer, error) {
	p := env.Peer{ID: env.NodeID(c.Subject.CommonName)}
	if p.ID == "" {
		return env.Peer{}, fmt.Errorf("%w: certificate has no common name", ErrUnauthenticated)
	}
	for _, ou := range c.Subject.OrganizationalUnit {
		switch ou {
		case OUManager:
			p.Role = env.RoleManager
		case OUWorker:
			p.Role = env.RoleWorker
		}
	}
	if p.Role == env.RoleNone {
		return env.Peer{}, fmt.Errorf("%w: certificate of %s names no swarm role", ErrUnauthenticated, p.ID)
	}
	if len(c.Subject.Organization) > 0 {
		p.Org = c.Subject.Organization[0]
	}
	return p, nil
}

// helloFrom reads the hello headers of an incoming stream or RPC.
func helloFrom(md metadata.MD) Hello {
	get := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	h := Hello{NodeID: env.NodeID(get(HeaderNodeID)), Addr: get(HeaderAddr), Token: get(HeaderToken)}
	switch get(HeaderRole) {
	case "manager":
		h.Role = env.RoleManager
	case "worker":
		h.Role = env.RoleWorker
	}
	return h
}

// certPeer returns the identity of ctx's TLS peer, or ok=false when the
// connection is not TLS. tc may be nil (static TLS: verified chains).
func (tc *TLSConfig) certPeer(ctx context.Context) (p env.Peer, ok bool, err error) {
	gp, found := grpcpeer.FromContext(ctx)
	if !found || gp.AuthInfo == nil {
		return env.Peer{}, false, nil
	}
	ti, isTLS := gp.AuthInfo.(credentials.TLSInfo)
	if !isTLS {
		return env.Peer{}, false, nil
	}
	p, err = tc.peer(ti.State)
	return p, true, err
}

// IsLoopback reports whether a listen address (host:port) binds only to
// loopback. An empty host binds every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// ErrInsecureListen: asked to listen beyond loopback without TLS.
var ErrInsecureListen = errors.New("refusing to listen beyond loopback without TLS")

// CheckListen refuses a listen address beyond loopback when TLS is off:
// plain gRPC (and the unauthenticated hello identity with it) is for one
// machine only.
func CheckListen(addr string, tlsCfg *tls.Config) error {
	if tlsCfg != nil || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%w: %s (use 127.0.0.1:PORT, or give TLS certificates)", ErrInsecureListen, addr)
}
