package ca

import (
	"crypto/ed25519"
	"crypto/x509"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// Join tokens come from operators and from joiners: the parser must never
// panic, and what it accepts must format back to the same string.
func FuzzParseJoinToken(f *testing.F) {
	r := newSeeded(1)
	root, _ := NewRootCA(r, t0)
	f.Add(NewJoinToken(root.Cert, r))
	f.Add("SWMTKN-1-x-y")
	f.Add("")
	f.Add("SWMTKN-1--")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseJoinToken(s)
		if err != nil {
			return
		}
		if tok.String() != s {
			t.Fatalf("%q parses to %+v, which formats as %q", s, tok, tok.String())
		}
		_ = RoleOfToken(s, &api.JoinTokens{Worker: s})
	})
}

// A CSR comes from any peer, before it is authenticated.
func FuzzParseCSR(f *testing.F) {
	r := newSeeded(2)
	csr, _ := NewCSR(NewKey(r), r)
	f.Add(csr)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := ParseCSR(der)
		if err == nil && len(pub) != 32 {
			t.Fatalf("accepted a CSR with a %d-byte key", len(pub))
		}
	})
}

// Certificates and chains come from managers' answers and peers'
// handshakes; a trust pool must refuse, never panic on, what does not
// chain to its root.
func FuzzParseCertificate(f *testing.F) {
	r := newSeeded(3)
	root, _ := NewRootCA(r, t0)
	next, cross, _ := root.NewRotation(r, t0)
	key := NewKey(r)
	leaf, _ := next.Issue(key.Public().(ed25519.PublicKey), "w1", env.RoleWorker, t0, time.Hour, r)
	f.Add(leaf.Raw, cross.Raw)
	f.Add(root.Cert.Raw, []byte(nil))
	f.Add([]byte{0x30, 0x00}, []byte{0x30, 0x00})
	pool := NewTrustPool([]*x509.Certificate{root.Cert})
	f.Fuzz(func(t *testing.T, leafDER, chainDER []byte) {
		var chain [][]byte
		if len(chainDER) > 0 {
			chain = [][]byte{chainDER}
		}
		c, err := ParseCertificate(leafDER, chain)
		if err != nil {
			return
		}
		if p, err := pool.Verify(c, t0); err == nil && p != c.Peer {
			t.Fatalf("verified as %+v, certificate names %+v", p, c.Peer)
		}
		_ = c.IssuedBy(root.Cert)
	})
}

// The CA messages as a real transport decodes them, then through the
// decoders their fields go to: a CSR, a leaf and chain, roots.
func FuzzCAMessages(f *testing.F) {
	r := newSeeded(4)
	root, _ := NewRootCA(r, t0)
	key := NewKey(r)
	csr, _ := NewCSR(key, r)
	leaf, _ := root.Issue(key.Public().(ed25519.PublicKey), "w1", env.RoleWorker, t0, time.Hour, r)
	for _, m := range []proto.Message{
		&api.IssueNodeCertificate{RequestId: 1, Token: NewJoinToken(root.Cert, r), Csr: csr, NodeId: "w1", Name: "w1"},
		&api.IssueNodeCertificateResponse{RequestId: 1, Certificate: leaf.Raw, Roots: [][]byte{root.Cert.Raw}},
		&api.GetRootCA{RequestId: 2, Certificate: leaf.Raw},
		&api.GetRootCAResponse{RequestId: 2, Roots: [][]byte{root.Cert.Raw}, SigningRoot: root.Cert.Raw},
		&api.RootRotation{Roots: [][]byte{root.Cert.Raw}, SigningRoot: root.Cert.Raw},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	shared := NewShared()
	f.Fuzz(func(t *testing.T, b []byte) {
		var req api.IssueNodeCertificate
		if proto.Unmarshal(b, &req) == nil {
			_, _ = ParseCSR(req.GetCsr())
			_, _ = ParseJoinToken(req.GetToken())
			_ = ValidNodeID(req.GetNodeId())
		}
		var resp api.IssueNodeCertificateResponse
		if proto.Unmarshal(b, &resp) == nil {
			if c, err := ParseCertificate(resp.GetCertificate(), resp.GetChain()); err == nil {
				_ = c.IssuedBy(root.Cert)
			}
			if roots, err := shared.parseRoots(resp.GetRoots()); err == nil {
				_, _ = rootsForToken(NewJoinToken(root.Cert, newSeeded(5)), roots, nil)
			}
		}
		var rot api.RootRotation
		if proto.Unmarshal(b, &rot) == nil {
			_, _ = (*Shared)(nil).parseRoots(rot.GetRoots())
		}
	})
}
