package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Real mode's mutual TLS. realnet builds its gRPC credentials from these,
// so both worlds apply the same rules: chains to the node's trusted roots,
// validity against the verifier's clock with MaxClockSkew of tolerance,
// identity from the leaf's subject. The functions here run on TLS
// handshake goroutines: creds must return an immutable snapshot (the node
// hands out new Credentials on every change, through
// Config.OnCertificate; keep the latest in an atomic.Pointer).

// CredentialsSource returns the node's credentials now, nil before it has
// any.
type CredentialsSource func() *Credentials

func tlsCertificate(c *Credentials) (*tls.Certificate, error) {
	if c == nil {
		return nil, errors.New("ca: no certificate yet")
	}
	chain := [][]byte{c.Cert.Leaf.Raw}
	for _, x := range c.Cert.Chain {
		chain = append(chain, x.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: c.Key, Leaf: c.Cert.Leaf}, nil
}

// VerifyChain checks a presented chain (DER, leaf first) against roots at
// now, as TrustPool.Verify does, without caching: the identity the leaf
// names, or an error wrapping ErrUnauthenticated.
func VerifyChain(roots []*x509.Certificate, raw [][]byte, now time.Time) (env.Peer, error) {
	if len(raw) == 0 {
		return env.Peer{}, fmt.Errorf("%w: no certificate", ErrUnauthenticated)
	}
	c, err := ParseCertificate(raw[0], raw[1:])
	if err != nil {
		return env.Peer{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return NewTrustPool(roots).Verify(c, now)
}

// ServerTLSConfig is a node's listening side: it presents the node's
// chain, asks every client for its own and verifies it when given. A
// client without a certificate (a joiner) gets through the handshake as
// RoleNone, which the authorization table lets ask for a certificate and
// nothing else. now is the node's clock (time.Now in real mode).
func ServerTLSConfig(creds CredentialsSource, now func() time.Time) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return tlsCertificate(creds())
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // a joiner: RoleNone
			}
			c := creds()
			if c == nil {
				return fmt.Errorf("%w: this node trusts no root yet", ErrUnauthenticated)
			}
			_, err := VerifyChain(c.Roots, raw, now())
			return err
		},
	}
}

// ClientTLSConfig is a node's dialing side: it presents the node's chain
// (none while joining) and verifies the server's against the node's roots.
// A joiner, which has no roots yet, passes pinned: the roots its join
// token's digest names (JoinPins); the server must chain to one of them.
func ClientTLSConfig(creds CredentialsSource, now func() time.Time, pins func() []*x509.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Standard verification checks host names, which node certificates
		// do not carry as such; VerifyPeerCertificate does the check.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := creds()
			if c == nil {
				return &tls.Certificate{}, nil // joining: no certificate
			}
			return tlsCertificate(c)
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			var roots []*x509.Certificate
			if c := creds(); c != nil {
				roots = c.Roots
			} else if pins != nil {
				roots = pins()
			}
			if len(roots) == 0 {
				return fmt.Errorf("%w: no root to verify the server with", ErrUnauthenticated)
			}
			p, err := VerifyChain(roots, raw, now())
			if err == nil && p.Role != env.RoleManager {
				err = fmt.Errorf("%w: %s serves as %s, not as a manager", ErrPermissionDenied, p.ID, p.Role)
			}
			return err
		},
	}
}

// PeerFromState reads the peer's identity from a finished handshake made
// with ServerTLSConfig or ClientTLSConfig (whose VerifyPeerCertificate has
// verified the chain): RoleNone when the peer presented no certificate.
// Use it instead of VerifiedChains, which those configurations leave
// empty.
func PeerFromState(cs tls.ConnectionState) (env.Peer, error) {
	if len(cs.PeerCertificates) == 0 {
		return env.Peer{}, nil
	}
	return PeerFromCertificate(cs.PeerCertificates[0])
}

// JoinPins returns the root a joiner may trust before it has joined: the
// one among roots whose digest token names. A joiner fetches the roots
// over an unverified connection (GetRootCA), then pins with this.
func JoinPins(token string, roots []*x509.Certificate) ([]*x509.Certificate, error) {
	return rootsForToken(token, roots, nil)
}
