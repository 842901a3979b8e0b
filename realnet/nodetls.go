package realnet

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/env"
)

// NodeTLS is a node's mutual TLS 1.3 built on its CA credentials
// (engine/ca): the certificate it presents on both ends of every
// connection, and the check of what peers present against the roots the
// node trusts now, by its own clock. It is safe for concurrent use: the
// node's loop hands it new credentials (ca.Config.OnCertificate: a join,
// a renewal, a promotion) and roots (a root rotation); handshakes read
// them.
//
// Joining is the one delicate part. A joiner has no certificate and
// trusts no root; its join token names the root's digest. So it dials
// without a client certificate and accepts a server only if the chain the
// server presents holds the root its token names (servers present their
// roots after their chain for this) and the server's leaf is a manager's
// under it, before anything, the token included, is sent. To the
// manager it is RoleNone, which the authorization table lets ask for a
// certificate and nothing else, and the manager answers on the joiner's
// own stream (Transport.Send), since it cannot verify a joiner it would
// dial. A node serves nothing before it has a certificate.
type NodeTLS struct {
	creds atomic.Pointer[ca.Credentials]
	roots atomic.Pointer[[]*x509.Certificate]
	token string
	now   func() time.Time
}

// NewNodeTLS returns a node's TLS with the credentials it has (nil when
// it has none yet) and the join token it joins with ("" when it does not
// join). now is the node's clock (nil: time.Now).
func NewNodeTLS(creds *ca.Credentials, token string, now func() time.Time) *NodeTLS {
	if now == nil {
		now = time.Now
	}
	t := &NodeTLS{token: token, now: now}
	if creds != nil {
		t.SetCredentials(creds)
	}
	return t
}

// SetCredentials makes c the node's certificate and key for every new
// handshake, and its roots the trusted ones until SetRoots says more. It
// reports whether the certificate changed (the transport then reconnects,
// so that peers see the new one).
func (t *NodeTLS) SetCredentials(c *ca.Credentials) bool {
	old := t.creds.Swap(c)
	if c != nil {
		r := c.Roots
		t.roots.Store(&r)
	}
	return old == nil || c == nil || !bytes.Equal(old.Cert.Leaf.Raw, c.Cert.Leaf.Raw)
}

// Credentials are the node's credentials now, nil before it joined.
func (t *NodeTLS) Credentials() *ca.Credentials { return t.creds.Load() }

// SetRoots sets the roots the node trusts (its CA client's trust pool:
// both roots during a rotation). Empty keeps the credentials' roots.
func (t *NodeTLS) SetRoots(roots []*x509.Certificate) {
	if len(roots) == 0 {
		return
	}
	t.roots.Store(&roots)
}

func (t *NodeTLS) trusted() []*x509.Certificate {
	if p := t.roots.Load(); p != nil {
		return *p
	}
	return nil
}

// Config returns the transport's TLS settings.
func (t *NodeTLS) Config() *TLSConfig {
	return &TLSConfig{Server: t.serverConfig(), Client: t.clientConfig(), Identify: Identify}
}

// presented is the chain this node shows: its leaf, the intermediates
// (a cross-signed root during a rotation) and, as a server, its roots,
// for joiners to find the one their token names.
func (t *NodeTLS) presented(withRoots bool) (*tls.Certificate, error) {
	c := t.creds.Load()
	if c == nil {
		return nil, fmt.Errorf("%w: this node has no certificate yet", ca.ErrUnauthenticated)
	}
	chain := [][]byte{c.Cert.Leaf.Raw}
	for _, x := range c.Cert.Chain {
		chain = append(chain, x.Raw)
	}
	if withRoots {
		for _, r := range c.Roots {
			chain = append(chain, r.Raw)
		}
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: c.Key, Leaf: c.Cert.Leaf}, nil
}

func (t *NodeTLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Asked for and verified when given; a joiner gives none and is
		// RoleNone (Identify).
		ClientAuth:     tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.presented(true) },
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			_, err := ca.VerifyChain(t.trusted(), raw, t.now())
			return err
		},
	}
}

// clientConfig is the dialing side: it presents the node's certificate
// and verifies the server's against the trusted roots; without
// credentials it pins the server to the join token's root.
func (t *NodeTLS) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Node certificates name nodes, not hosts: the chain is checked
		// below, and the node ID against the one meant by the transport.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if t.creds.Load() == nil {
				return &tls.Certificate{}, nil // joining: none
			}
			return t.presented(false)
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if t.creds.Load() == nil {
				return t.verifyPinned(raw)
			}
			_, err := ca.VerifyChain(t.trusted(), raw, t.now())
			return err
		},
	}
}

// verifyPinned accepts a server whose chain holds the root the join token
// names, and whose leaf is a manager's certificate under it.
func (t *NodeTLS) verifyPinned(raw [][]byte) error {
	if t.token == "" {
		return fmt.Errorf("%w: no certificate and no join token to check the server with", ca.ErrUnauthenticated)
	}
	presented := make([]*x509.Certificate, 0, len(raw))
	for _, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%w: %w", ca.ErrUnauthenticated, err)
		}
		presented = append(presented, c)
	}
	pins, err := ca.JoinPins(t.token, presented)
	if err != nil {
		return fmt.Errorf("%w: the server's chain holds no root the join token names: %w", ca.ErrUnauthenticated, err)
	}
	p, err := ca.VerifyChain(pins, raw, t.now())
	if err != nil {
		return err
	}
	if p.Role != env.RoleManager {
		return fmt.Errorf("%w: %s serves as %s, not as a manager", ca.ErrPermissionDenied, p.ID, p.Role)
	}
	return nil
}

// Identify is who presented the certificates of a handshake NodeTLS
// finished: the handshake verified the chain (VerifyPeerCertificate), so
// the leaf's subject is the identity; RoleNone for a peer that presented
// none (a joiner).
func Identify(cs tls.ConnectionState) (env.Peer, error) {
	return ca.PeerFromState(cs)
}

// joinerAnswer reports whether a message may go to a joiner on the stream
// it opened: the CA's answers, which carry nothing secret (a certificate
// for the joiner's own key, and the roots).
func joinerAnswer(method string) bool {
	return method == api.MethodIssueNodeCertificateResponse || method == api.MethodGetRootCAResponse
}
