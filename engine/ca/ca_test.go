package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// seeded is an env.Rand over a seeded stream, as the simulator gives.
type seeded struct{ r *rand.Rand }

func newSeeded(seed uint64) *seeded {
	return &seeded{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *seeded) Int63n(n int64) int64 { return s.r.Int64N(n) }
func (s *seeded) Float64() float64     { return s.r.Float64() }
func (s *seeded) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.r.Uint32())
	}
	return len(p), nil
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustRoot(t testing.TB, r env.Rand) *RootCA {
	t.Helper()
	root, err := NewRootCA(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func mustLeaf(t testing.TB, root *RootCA, r env.Rand, id string, role env.Role, expiry time.Duration, chain ...*x509.Certificate) *Certificate {
	t.Helper()
	key := NewKey(r)
	leaf, err := root.Issue(key.Public().(ed25519.PublicKey), env.NodeID(id), role, t0, expiry, r)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCertificate(leaf, chain)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The subject is the CA's to write: CN the node, OU the role, O the
// cluster; and the leaf verifies under its root.
func TestIssueNamesNodeRoleAndCluster(t *testing.T) {
	r := newSeeded(1)
	root := mustRoot(t, r)
	for _, role := range []env.Role{env.RoleWorker, env.RoleManager} {
		c := mustLeaf(t, root, r, "w1", role, time.Hour)
		want := env.Peer{ID: "w1", Role: role, Org: root.Org()}
		if c.Peer != want {
			t.Errorf("peer %+v, want %+v", c.Peer, want)
		}
		p, err := NewTrustPool([]*x509.Certificate{root.Cert}).Verify(c, t0)
		if err != nil || p != want {
			t.Errorf("verify: %+v, %v", p, err)
		}
		if !c.IssuedBy(root.Cert) {
			t.Error("IssuedBy(root) is false")
		}
		if got := c.Leaf.NotBefore; !got.Equal(t0.Add(-Backdate)) {
			t.Errorf("NotBefore %v, want backdated by %v", got, Backdate)
		}
	}
	if _, err := root.Issue(NewKey(r).Public().(ed25519.PublicKey), "bad id!", env.RoleWorker, t0, time.Hour, r); !errors.Is(err, ErrBadRequest) {
		t.Errorf("issue for a bad ID: %v", err)
	}
	if _, err := root.Issue(NewKey(r).Public().(ed25519.PublicKey), "w1", env.RoleNone, t0, time.Hour, r); !errors.Is(err, ErrBadRequest) {
		t.Errorf("issue for no role: %v", err)
	}
}

// One seed, one set of certificates: keys, serials and signatures all come
// from the node's stream (the simulator's determinism rests on it).
func TestCertificatesReplayWithTheSeed(t *testing.T) {
	make1 := func() [][]byte {
		r := newSeeded(7)
		root := mustRoot(t, r)
		key := NewKey(r)
		csr, err := NewCSR(key, r)
		if err != nil {
			t.Fatal(err)
		}
		leaf := mustLeaf(t, root, r, "m1", env.RoleManager, time.Hour)
		next, cross, err := root.NewRotation(r, t0)
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{root.Cert.Raw, csr, leaf.Leaf.Raw, next.Cert.Raw, cross.Raw, []byte(NewJoinToken(root.Cert, r))}
	}
	a, b := make1(), make1()
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("item %d differs between two runs of one seed", i)
		}
	}
}

// Validation tolerates MaxClockSkew on either side of the validity
// window, and no more.
func TestVerifyToleratesSkew(t *testing.T) {
	r := newSeeded(2)
	root := mustRoot(t, r)
	c := mustLeaf(t, root, r, "w1", env.RoleWorker, time.Hour)
	pool := NewTrustPool([]*x509.Certificate{root.Cert})
	// A refusal names the certificate's own bound, not the widened one.
	expired := "expired at " + c.Leaf.NotAfter.UTC().Format(time.RFC3339)
	early := "not valid before " + c.Leaf.NotBefore.UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		at   time.Time
		want string // "" for accepted
	}{
		{t0, ""},
		{t0.Add(time.Hour + MaxClockSkew - time.Second), ""},
		{t0.Add(time.Hour + MaxClockSkew + time.Second), expired},
		{t0.Add(-Backdate - MaxClockSkew + time.Second), ""},
		{t0.Add(-Backdate - MaxClockSkew - time.Second), early},
	} {
		_, err := pool.Verify(c, tc.at)
		if (err == nil) != (tc.want == "") {
			t.Errorf("at %v: err %v, want %q", tc.at.Sub(t0), err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("error %v does not wrap ErrUnauthenticated", err)
		}
		if err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("at %v: error %q does not say %q", tc.at.Sub(t0), err, tc.want)
		}
	}
}

// A certificate of another root, or none, does not verify.
func TestVerifyRefusesStrangers(t *testing.T) {
	r := newSeeded(3)
	root, other := mustRoot(t, r), mustRoot(t, r)
	c := mustLeaf(t, other, r, "w1", env.RoleWorker, time.Hour)
	pool := NewTrustPool([]*x509.Certificate{root.Cert})
	if _, err := pool.Verify(c, t0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a leaf of another root: %v", err)
	}
	if _, err := pool.Verify(nil, t0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("no certificate: %v", err)
	}
	if _, err := NewTrustPool(nil).Verify(c, t0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("empty pool: %v", err)
	}
}

// During a rotation a leaf of the new root, presented with the
// cross-signed root, verifies for a node that trusts only the old root,
// one that trusts both, and one that trusts only the new.
func TestCrossSignedRotation(t *testing.T) {
	r := newSeeded(4)
	old := mustRoot(t, r)
	next, cross, err := old.NewRotation(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	if next.Org() != old.Org() {
		t.Fatalf("the new root changed cluster: %q, %q", next.Org(), old.Org())
	}
	leaf := mustLeaf(t, next, r, "w1", env.RoleWorker, time.Hour, cross)
	oldLeaf := mustLeaf(t, old, r, "w2", env.RoleWorker, time.Hour)
	for name, roots := range map[string][]*x509.Certificate{
		"old": {old.Cert}, "both": {old.Cert, next.Cert}, "new": {next.Cert},
	} {
		if _, err := NewTrustPool(roots).Verify(leaf, t0); err != nil {
			t.Errorf("trusting %s: new leaf refused: %v", name, err)
		}
	}
	if _, err := NewTrustPool([]*x509.Certificate{next.Cert}).Verify(oldLeaf, t0); err == nil {
		t.Error("once only the new root is trusted, an old leaf must be refused")
	}
	if !leaf.IssuedBy(next.Cert) || leaf.IssuedBy(old.Cert) {
		t.Error("IssuedBy does not tell the roots apart")
	}
}

func TestJoinTokens(t *testing.T) {
	r := newSeeded(5)
	root := mustRoot(t, r)
	tokens := NewJoinTokens(root.Cert, r)
	if tokens.Worker == tokens.Manager {
		t.Fatal("worker and manager tokens are the same")
	}
	for _, tok := range []string{tokens.Worker, tokens.Manager} {
		if !strings.HasPrefix(tok, "SWMTKN-1-") || len(tok) != TokenLen {
			t.Errorf("token %q has the wrong shape", tok)
		}
		p, err := ParseJoinToken(tok)
		if err != nil || p.Digest != root.Digest() || p.String() != tok {
			t.Errorf("parse %q: %+v, %v", tok, p, err)
		}
	}
	if got := RoleOfToken(tokens.Worker, tokens); got != env.RoleWorker {
		t.Errorf("worker token grants %s", got)
	}
	if got := RoleOfToken(tokens.Manager, tokens); got != env.RoleManager {
		t.Errorf("manager token grants %s", got)
	}
	rotated := &api.JoinTokens{Worker: NewJoinToken(root.Cert, r), Manager: tokens.Manager}
	if got := RoleOfToken(tokens.Worker, rotated); got != env.RoleNone {
		t.Errorf("a rotated worker token still grants %s", got)
	}
	for _, bad := range []string{
		"", "SWMTKN-1-x-y", strings.Replace(tokens.Worker, "SWMTKN", "SWMTKX", 1),
		strings.Replace(tokens.Worker, "-1-", "-2-", 1), strings.ToUpper(tokens.Worker),
		tokens.Worker[:len(tokens.Worker)-1] + "-",
	} {
		if _, err := ParseJoinToken(bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ParseJoinToken(%q) = %v", bad, err)
		}
		if RoleOfToken(bad, tokens) != env.RoleNone {
			t.Errorf("%q grants a role", bad)
		}
	}
	if TokenEqual("", "") {
		t.Error("an empty expected token matches")
	}
}

// A joiner trusts the root its token's digest names, and a root that one
// cross-signed; a root it cannot tie to the token is never trusted.
func TestRootsForToken(t *testing.T) {
	r := newSeeded(6)
	old := mustRoot(t, r)
	next, cross, err := old.NewRotation(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	tok := NewJoinToken(old.Cert, r)
	got, err := rootsForToken(tok, []*x509.Certificate{old.Cert, next.Cert}, []*x509.Certificate{cross})
	if err != nil || len(got) != 2 {
		t.Fatalf("with the cross-signed root: %d roots, %v", len(got), err)
	}
	got, err = rootsForToken(tok, []*x509.Certificate{old.Cert, next.Cert}, nil)
	if err != nil || len(got) != 1 || got[0] != old.Cert {
		t.Fatalf("without it the new root must not be trusted: %d roots, %v", len(got), err)
	}
	evil := mustRoot(t, r)
	if _, err := rootsForToken(tok, []*x509.Certificate{evil.Cert}, nil); !errors.Is(err, ErrRootMismatch) {
		t.Fatalf("a root that is not the token's: %v", err)
	}
}

func TestCSR(t *testing.T) {
	r := newSeeded(8)
	key := NewKey(r)
	der, err := NewCSR(key, r)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParseCSR(der)
	if err != nil || !bytes.Equal(pub, key.Public().(ed25519.PublicKey)) {
		t.Fatalf("ParseCSR: %v", err)
	}
	// A tampered CSR fails its self-signature.
	bad := bytes.Clone(der)
	bad[len(bad)-1] ^= 1
	if _, err := ParseCSR(bad); !errors.Is(err, ErrBadRequest) {
		t.Errorf("tampered CSR: %v", err)
	}
	// Only Ed25519 keys are signed.
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	edsa, _ := x509.CreateCertificateRequest(crand.Reader, &x509.CertificateRequest{}, ek)
	if _, err := ParseCSR(edsa); !errors.Is(err, ErrBadRequest) {
		t.Errorf("ECDSA CSR: %v", err)
	}
	if _, err := ParseCSR(nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("empty CSR: %v", err)
	}
}

// A CSR this process made is taken once without a second signature
// check, byte for byte: a tampered copy, or the same CSR shown again, is
// checked (and the tampered one refused) as without Shared.
func TestSharedCSRs(t *testing.T) {
	r := newSeeded(10)
	der, err := NewCSR(NewKey(r), r)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(der)
	bad[len(bad)-1] ^= 1
	s := NewShared()
	s.madeCSR(der)
	if s.tookCSR(bad) {
		t.Fatal("a tampered CSR passed for the one made")
	}
	if _, err := parseCSR(bad, !s.tookCSR(bad)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("tampered CSR: %v", err)
	}
	if !s.tookCSR(bytes.Clone(der)) {
		t.Fatal("the CSR made was not recognised")
	}
	if s.tookCSR(der) {
		t.Error("a CSR was taken twice")
	}
	var none *Shared // a real node: every CSR is checked
	none.madeCSR(der)
	if none.tookCSR(der) {
		t.Error("no Shared, yet a CSR skipped its check")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	r := newSeeded(9)
	root := mustRoot(t, r)
	back, err := ParseRootCA(EncodeCertsPEM(root.Cert), EncodeKeyPEM(root.Key))
	if err != nil || !bytes.Equal(back.Cert.Raw, root.Cert.Raw) || !bytes.Equal(back.Key, root.Key) {
		t.Fatalf("round trip: %v", err)
	}
	other := mustRoot(t, r)
	if _, err := ParseRootCA(EncodeCertsPEM(root.Cert), EncodeKeyPEM(other.Key)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a key of another root: %v", err)
	}
}

// PeerFromCertificate refuses subjects that do not name exactly one node,
// one role and one cluster.
func TestPeerFromCertificateRefusesOddSubjects(t *testing.T) {
	r := newSeeded(10)
	root := mustRoot(t, r)
	c := mustLeaf(t, root, r, "w1", env.RoleWorker, time.Hour)
	for name, edit := range map[string]func(x *x509.Certificate){
		"no CN":    func(x *x509.Certificate) { x.Subject.CommonName = "" },
		"two OUs":  func(x *x509.Certificate) { x.Subject.OrganizationalUnit = []string{OUWorker, OUManager} },
		"odd OU":   func(x *x509.Certificate) { x.Subject.OrganizationalUnit = []string{"swarm-admin"} },
		"no O":     func(x *x509.Certificate) { x.Subject.Organization = nil },
		"empty O":  func(x *x509.Certificate) { x.Subject.Organization = []string{""} },
		"space ID": func(x *x509.Certificate) { x.Subject.CommonName = "w 1" },
	} {
		x := *c.Leaf
		edit(&x)
		if _, err := PeerFromCertificate(&x); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A certificate keeps the verdicts reached on it, one per root set: a
// second pool with the same roots finds it, a pool with other roots
// decides for itself, a leaf signed by a stranger under a known name is
// refused every time, and the validity window is checked on every call.
func TestVerdictsKeptPerRootSet(t *testing.T) {
	r := newSeeded(5)
	root, other := mustRoot(t, r), mustRoot(t, r)
	c := mustLeaf(t, root, r, "w1", env.RoleWorker, time.Hour)
	forged := mustLeaf(t, other, r, "w1", env.RoleWorker, time.Hour) // same name, another root
	a := NewTrustPool([]*x509.Certificate{root.Cert})
	b := NewTrustPool([]*x509.Certificate{root.Cert})
	o := NewTrustPool([]*x509.Certificate{other.Cert})
	for i := range 2 {
		if _, err := a.Verify(c, t0); err != nil {
			t.Fatalf("pass %d: pool a refused a good leaf: %v", i, err)
		}
		if _, err := b.Verify(c, t0); err != nil {
			t.Fatalf("pass %d: pool b refused a good leaf: %v", i, err)
		}
		if _, err := o.Verify(c, t0); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("pass %d: a pool of another root took the leaf: %v", i, err)
		}
		if _, err := a.Verify(forged, t0); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("pass %d: a forged leaf got in: %v", i, err)
		}
		if _, err := a.Verify(c, t0.Add(2*time.Hour+MaxClockSkew)); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("pass %d: an expired leaf got in: %v", i, err)
		}
	}
	if c.verdictCount() != 2 {
		t.Fatalf("%d verdicts kept, want one per root set (2)", c.verdictCount())
	}
	// Bounded: a leaf shown to many root sets keeps the latest few.
	for range 10 {
		NewTrustPool([]*x509.Certificate{mustRoot(t, r).Cert}).Verify(c, t0)
	}
	if c.verdictCount() != maxVerdicts {
		t.Fatalf("%d verdicts kept, want at most %d", c.verdictCount(), maxVerdicts)
	}
	if _, err := a.Verify(c, t0); err != nil {
		t.Fatalf("after eviction: %v", err)
	}
}

// A certificate a CA of this process signed is verified once without its
// signature check, to the same verdict as in full; a tampered copy, a
// leaf shown to another root set, a record naming another parent, a root
// that is not valid over the leaf, and a root set where x509 would have to
// choose between two roots all go through x509.Verify.
func TestSharedIssuedCertificates(t *testing.T) {
	r := newSeeded(11)
	root, other := mustRoot(t, r), mustRoot(t, r)
	next, _, err := root.NewRotation(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	s := NewShared()
	issue := func(ca *RootCA, id string, expiry time.Duration, parent *x509.Certificate) *Certificate {
		t.Helper()
		der, err := ca.IssueDER(NewKey(r).Public().(ed25519.PublicKey), env.NodeID(id), env.RoleWorker, t0, expiry, r)
		if err != nil {
			t.Fatal(err)
		}
		s.madeCert(der, parent)
		c, err := ParseCertificate(der, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// full is the verdict of a pool that knows nothing of s.
	full := func(c *Certificate, roots ...*x509.Certificate) verdict {
		fresh, err := ParseCertificate(c.Leaf.Raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		return NewTrustPool(roots).verifyChain(fresh)
	}
	check := func(name string, c *Certificate, wantTaken uint64, wantOK bool, roots ...*x509.Certificate) {
		t.Helper()
		taken := s.issuedTaken
		got := s.pool(roots).verifyChain(c)
		if s.issuedTaken-taken != wantTaken {
			t.Errorf("%s: %d verifications skipped the signature, want %d", name, s.issuedTaken-taken, wantTaken)
		}
		if (got.err == nil) != wantOK {
			t.Errorf("%s: verdict %v, want ok=%v", name, got.err, wantOK)
		}
		want := full(c, roots...)
		if got.peer != want.peer || got.earliest != want.earliest || got.latest != want.latest || (got.err == nil) != (want.err == nil) {
			t.Errorf("%s: verdict %+v, x509.Verify's %+v", name, got, want)
		}
	}

	good := issue(root, "w1", time.Hour, root.Cert)
	check("issued here", good, 1, true, root.Cert)
	if len(s.issued) != 0 {
		t.Errorf("%d certificates still recorded after their check", len(s.issued))
	}
	again, err := ParseCertificate(good.Leaf.Raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("shown again", again, 0, true, root.Cert)

	tampered := issue(root, "w2", time.Hour, root.Cert)
	bad := bytes.Clone(tampered.Leaf.Raw)
	bad[len(bad)-1] ^= 1 // the signature's last byte
	if c, err := ParseCertificate(bad, nil); err == nil {
		check("tampered", c, 0, false, root.Cert)
	}

	check("another root set", issue(root, "w3", time.Hour, root.Cert), 0, false, other.Cert)
	check("recorded with another parent", issue(root, "w4", time.Hour, other.Cert), 0, true, root.Cert)
	// The leaf outlives its root by so much that the root has expired at
	// the middle of the leaf's life, the time the chain is checked at.
	check("root expired", issue(root, "w5", 3*RootCertExpiry, root.Cert), 0, false, root.Cert)
	if bytes.Equal(root.Cert.RawSubject, next.Cert.RawSubject) {
		check("two roots of one name", issue(next, "w6", time.Hour, next.Cert), 0, true, root.Cert, next.Cert)
	}
	check("the new root alone", issue(next, "w7", time.Hour, next.Cert), 1, true, next.Cert)

	var none *Shared // a real node: every chain is checked
	none.madeCert(good.Leaf.Raw, root.Cert)
	if none.tookCert(good.Leaf.Raw) != nil {
		t.Error("no Shared, yet a certificate skipped its check")
	}
}

// A verdict's window is in Unix nanoseconds: a date int64 cannot hold
// (a foreign certificate valid until 9999) saturates instead of wrapping
// around to a window that would refuse, or accept, everything.
func TestUnixNanoSaturates(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{t0, t0.UnixNano()},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), math.MaxInt64},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), math.MinInt64},
		{time.Unix(0, math.MaxInt64), math.MaxInt64},
		{time.Unix(0, math.MinInt64), math.MinInt64},
	} {
		if got := unixNano(tc.at); got != tc.want {
			t.Errorf("unixNano(%v) = %d, want %d", tc.at, got, tc.want)
		}
	}
}

// signedHere leaves to x509.Verify any root that constrains the chains
// under it, which this package's CA never makes: plainCA must see each.
func TestPlainCA(t *testing.T) {
	r := newSeeded(12)
	root := mustRoot(t, r)
	if !plainCA(root.Cert) || hasPolicies(root.Cert) {
		t.Fatal("the CA's own root is not a plain CA")
	}
	for name, change := range map[string]func(x *x509.Certificate){
		"not a CA":             func(x *x509.Certificate) { x.IsCA = false },
		"no basic constraints": func(x *x509.Certificate) { x.BasicConstraintsValid = false },
		"no cert signing":      func(x *x509.Certificate) { x.KeyUsage = x509.KeyUsageDigitalSignature },
		"another key type":     func(x *x509.Certificate) { x.PublicKeyAlgorithm = x509.ECDSA },
		"critical extension":   func(x *x509.Certificate) { x.UnhandledCriticalExtensions = []asn1.ObjectIdentifier{{1, 2, 3}} },
		"DNS constraint":       func(x *x509.Certificate) { x.PermittedDNSDomains = []string{"example"} },
		"excluded DNS":         func(x *x509.Certificate) { x.ExcludedDNSDomains = []string{"example"} },
		"critical names":       func(x *x509.Certificate) { x.PermittedDNSDomainsCritical = true },
		"email constraint":     func(x *x509.Certificate) { x.PermittedEmailAddresses = []string{"a@b"} },
		"URI constraint":       func(x *x509.Certificate) { x.ExcludedURIDomains = []string{"example"} },
		"IP constraint":        func(x *x509.Certificate) { x.PermittedIPRanges = []*net.IPNet{{}} },
		"policy":               func(x *x509.Certificate) { x.PolicyIdentifiers = []asn1.ObjectIdentifier{{1, 2}} },
		"explicit policy":      func(x *x509.Certificate) { x.RequireExplicitPolicyZero = true },
		"inhibit mapping":      func(x *x509.Certificate) { x.InhibitPolicyMapping = 1 },
		"inhibit any":          func(x *x509.Certificate) { x.InhibitAnyPolicyZero = true },
	} {
		x := *root.Cert
		change(&x)
		if plainCA(&x) {
			t.Errorf("%s: taken for a plain CA", name)
		}
	}
}

// Nodes that share a Shared parse a root once and share one pool per root
// set; a root that does not parse is refused every time and never kept,
// and a pool shared by two nodes still refuses a stranger's leaf.
func TestSharedRootsAndPools(t *testing.T) {
	r := newSeeded(6)
	root, other := mustRoot(t, r), mustRoot(t, r)
	s := NewShared()
	a, err := s.parseRoots([][]byte{root.Cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.parseRoots([][]byte{slices.Clone(root.Cert.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	if a[0] != b[0] {
		t.Error("the same root DER was parsed twice")
	}
	bad := slices.Clone(root.Cert.Raw)
	bad[len(bad)/2] ^= 0xff
	for range 2 {
		if _, err := s.parseRoots([][]byte{bad}); err == nil {
			t.Fatal("a corrupted root parsed")
		}
	}
	if len(s.certs) != 1 {
		t.Errorf("%d certificates kept, want 1", len(s.certs))
	}
	if s.pool(a) != s.pool(b) {
		t.Error("two pools for one root set")
	}
	if s.pool(a) == s.pool([]*x509.Certificate{other.Cert}) {
		t.Error("one pool for two root sets")
	}
	stranger := mustLeaf(t, other, r, "w1", env.RoleWorker, time.Hour)
	if _, err := s.pool(b).Verify(stranger, t0); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a shared pool took a stranger's leaf: %v", err)
	}
	if _, err := s.pool(a).Verify(mustLeaf(t, root, r, "w2", env.RoleWorker, time.Hour), t0); err != nil {
		t.Errorf("a shared pool refused a good leaf: %v", err)
	}
	var none *Shared // a real node: no sharing, same answers
	if p := none.pool(a); p == none.pool(a) || p.id != s.pool(a).id {
		t.Error("without Shared, each call makes its own pool, of the same root set")
	}
}
