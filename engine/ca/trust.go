package ca

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// TrustPool is the set of roots a node trusts. A pool's roots never
// change (a node replaces its pool when its roots change). Whether a
// chain leads to a set of roots is a function of the certificates' bytes
// and nothing else, so the verdict is worked out once per certificate and
// root set and kept on the certificate (Certificate.verdicts), where every
// pool with the same roots finds it: as a TLS session ticket spares a
// resumed connection the chain verification, a second look at a
// certificate costs a comparison. Only the validity window is checked
// again, against the verifier's clock, every time; a forged, expired or
// foreign certificate is still refused on every message.
type TrustPool struct {
	roots []*x509.Certificate
	pool  *x509.CertPool
	// id names the root set: a digest of the roots' DER, in order.
	id [sha256.Size]byte
	// org is the cluster of the first root. The verdicts it reaches and
	// the clients that use it hold this very string for the cluster of
	// the certificates they name, so that admission, which compares two
	// of them per inbound message, finds them equal by pointer without
	// reading either (two cache misses).
	org string
	// shared is the Shared that made the pool (nil for NewTrustPool): it
	// knows the certificates this process signed.
	shared *Shared
}

// verdict is what a chain check found. Its fields are ordered for the
// check of every message, which reads the window and the error, then the
// peer: in a Certificate's first verdict they share the certificate's
// first two cache lines with the root set's digest.
type verdict struct {
	// earliest and latest are the chain's validity window widened by
	// MaxClockSkew at each end, in Unix nanoseconds (saturated at the
	// ends of int64), what every message is checked against.
	earliest, latest int64
	err              error
	peer             env.Peer
}

// unixNano is t in Unix nanoseconds, saturated where int64 ends (years
// 1678 and 2262): a foreign certificate may say 9999.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minUnixNano):
		return math.MinInt64
	case t.After(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var minUnixNano, maxUnixNano = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// rootsVerdict is a verdict on a certificate under one root set.
type rootsVerdict struct {
	roots [sha256.Size]byte // TrustPool.id
	v     verdict
}

// maxVerdicts bounds the verdicts a certificate keeps: one per root set
// it was checked against (a root rotation shows it two or three).
const maxVerdicts = 4

// NewTrustPool trusts roots (nil or empty: trusts nothing).
func NewTrustPool(roots []*x509.Certificate) *TrustPool {
	return newTrustPool(roots, rootsID(roots))
}

func newTrustPool(roots []*x509.Certificate, id [sha256.Size]byte) *TrustPool {
	t := &TrustPool{roots: roots, pool: x509.NewCertPool(), id: id}
	if len(roots) > 0 {
		t.org = orgOf(roots[0])
	}
	for _, r := range roots {
		t.pool.AddCert(r)
	}
	return t
}

// rootsID digests a root set: the roots' DER, in order.
func rootsID(roots []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, r := range roots {
		binary.BigEndian.PutUint64(n[:], uint64(len(r.Raw)))
		h.Write(n[:])
		h.Write(r.Raw)
	}
	var id [sha256.Size]byte
	h.Sum(id[:0])
	return id
}

// Shared holds what the nodes of one process may share because it is a
// function of bytes alone: root certificates parsed from their DER, trust
// pools by root set (a TrustPool never changes), and the CSRs whose
// signature was checked as they were made. The simulator gives one to
// every node of a cluster, so that a hundred thousand workers hold one
// parsed root and one pool instead of one each; a real node has none
// (Config.Shared nil). Like the rest of engine/, it is not safe for
// concurrent use: the simulator runs every node on one goroutine. A
// certificate is interned only after it parsed, so a bad one is refused
// each time it is shown.
type Shared struct {
	certs map[string]*x509.Certificate // by DER
	pools map[[sha256.Size]byte]*TrustPool
	// csrs holds the DER of the CSRs this process made and has not shown
	// a CA yet. x509.CreateCertificateRequest checks the signature it
	// made before it returns, and a signature check is a function of the
	// bytes: the CA need not check those very bytes again. At 10,000
	// simulated workers joining, that second check was about 6% of the
	// join's CPU time.
	csrs map[string]struct{}
	// issued holds the DER of the certificates a CA of this process
	// signed and no pool has verified yet, with the certificate whose key
	// signed each. x509.CreateCertificate checks that the key matches
	// that parent and checks the signature it made, so the first chain
	// verification (the joiner's, of the answer it got) need not check
	// the signature again (TrustPool.signedHere): at 10,000 workers
	// joining, that check was about a tenth of the join's CPU time.
	issued map[string]*x509.Certificate
	// issuedTaken counts the verifications that used issued.
	issuedTaken uint64
}

// maxShared bounds each of Shared's tables but csrs; a full table is
// cleared. Roots change only with a rotation: a handful per run.
const maxShared = 64

// maxSharedCSRs bounds Shared.csrs, which holds every CSR in flight: all
// the workers of a large simulated cluster join at once. A full table is
// cleared; the CA then checks those CSRs itself. It bounds Shared.issued
// the same way.
const maxSharedCSRs = 1 << 17

// NewShared returns an empty Shared.
func NewShared() *Shared {
	return &Shared{
		certs:  map[string]*x509.Certificate{},
		pools:  map[[sha256.Size]byte]*TrustPool{},
		csrs:   map[string]struct{}{},
		issued: map[string]*x509.Certificate{},
	}
}

// madeCert records der, a certificate a CA of this process just signed
// with parent's key (x509.CreateCertificate checked both).
func (s *Shared) madeCert(der []byte, parent *x509.Certificate) {
	if s == nil || parent == nil {
		return
	}
	if len(s.issued) >= maxSharedCSRs {
		clear(s.issued)
	}
	s.issued[string(der)] = parent
}

// tookCert returns the certificate whose key signed der when madeCert
// recorded it, and forgets it; nil otherwise.
func (s *Shared) tookCert(der []byte) *x509.Certificate {
	if s == nil {
		return nil
	}
	parent := s.issued[string(der)]
	if parent != nil {
		delete(s.issued, string(der))
	}
	return parent
}

// madeCSR records der, a CSR NewCSR just made in this process.
func (s *Shared) madeCSR(der []byte) {
	if s == nil {
		return
	}
	if len(s.csrs) >= maxSharedCSRs {
		clear(s.csrs)
	}
	s.csrs[string(der)] = struct{}{}
}

// tookCSR reports whether der is a CSR recorded by madeCSR, and forgets
// it: a CSR shown again (a retry) is checked in full.
func (s *Shared) tookCSR(der []byte) bool {
	if s == nil {
		return false
	}
	if _, ok := s.csrs[string(der)]; !ok {
		return false
	}
	delete(s.csrs, string(der))
	return true
}

// parseRoot parses a root (or cross-signed root) certificate's DER, once
// per process when s is not nil.
func (s *Shared) parseRoot(der []byte) (*x509.Certificate, error) {
	if s == nil {
		return x509.ParseCertificate(der)
	}
	if c := s.certs[string(der)]; c != nil {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if len(s.certs) >= maxShared {
		clear(s.certs)
	}
	s.certs[string(der)] = c
	return c, nil
}

// pool is a TrustPool of roots, the one already made for the same roots
// when s is not nil.
func (s *Shared) pool(roots []*x509.Certificate) *TrustPool {
	id := rootsID(roots)
	if s == nil {
		return newTrustPool(roots, id)
	}
	if t := s.pools[id]; t != nil {
		return t
	}
	t := newTrustPool(roots, id)
	t.shared = s
	if len(s.pools) >= maxShared {
		clear(s.pools)
	}
	s.pools[id] = t
	return t
}

// Roots are the trusted roots, in the order given.
func (t *TrustPool) Roots() []*x509.Certificate {
	if t == nil {
		return nil
	}
	return t.roots
}

// Empty reports whether the pool trusts nothing (a node that has not
// joined yet).
func (t *TrustPool) Empty() bool { return t == nil || len(t.roots) == 0 }

// Trusts reports whether root is one of the pool's roots.
func (t *TrustPool) Trusts(root *x509.Certificate) bool {
	if t == nil || root == nil {
		return false
	}
	for _, r := range t.roots {
		if bytes.Equal(r.Raw, root.Raw) {
			return true
		}
	}
	return false
}

// Verify checks that c chains to one of the pool's roots and is valid at
// now, give or take MaxClockSkew, and returns the identity its leaf
// names. The chain is verified once per certificate and root set; later
// calls only compare times.
func (t *TrustPool) Verify(c *Certificate, now time.Time) (env.Peer, error) {
	if c == nil {
		return env.Peer{}, fmt.Errorf("%w: no certificate", ErrUnauthenticated)
	}
	if t.Empty() {
		return env.Peer{}, fmt.Errorf("%w: no trusted root to verify %s with", ErrUnauthenticated, c.Peer.ID)
	}
	v := t.chainVerdict(c)
	if v.err != nil {
		return env.Peer{}, v.err
	}
	switch n := unixNano(now); {
	case n < v.earliest:
		from := time.Unix(0, v.earliest).Add(MaxClockSkew)
		return env.Peer{}, fmt.Errorf("%w: certificate of %s is not valid before %s", ErrUnauthenticated, v.peer.ID, from.UTC().Format(time.RFC3339))
	case n > v.latest:
		until := time.Unix(0, v.latest).Add(-MaxClockSkew)
		return env.Peer{}, fmt.Errorf("%w: certificate of %s expired at %s", ErrUnauthenticated, v.peer.ID, until.UTC().Format(time.RFC3339))
	}
	return v.peer, nil
}

// chainVerdict is the verdict on c's chain under t's roots: the one c
// keeps for this root set, or a new one, which c then keeps.
func (t *TrustPool) chainVerdict(c *Certificate) verdict {
	// The first verdict lives in the certificate itself, which the caller
	// has just read: most certificates only ever meet one root set, and
	// the lookup on every message then costs no further cache miss.
	if c.hasFirst && c.first.roots == t.id {
		return c.first.v
	}
	for i := range c.more {
		if c.more[i].roots == t.id {
			return c.more[i].v
		}
	}
	v := t.verifyChain(c)
	if v.err == nil && v.peer.Org == t.org {
		v.peer.Org = t.org
	}
	rv := rootsVerdict{roots: t.id, v: v}
	switch {
	case !c.hasFirst:
		c.first, c.hasFirst = rv, true
	case 1+len(c.more) < maxVerdicts:
		c.more = append(c.more, rv)
	default: // full: drop the oldest root set
		c.first = c.more[0]
		c.more = append(slices.Delete(c.more, 0, 1), rv)
	}
	return v
}

// verdictCount is how many root sets c keeps verdicts for.
func (c *Certificate) verdictCount() int {
	if !c.hasFirst {
		return 0
	}
	return 1 + len(c.more)
}

// verifyChain builds a chain from c's leaf to a trusted root. Time is
// left out (the window is returned and checked by the caller, with the
// skew tolerance): the chain is verified as of the middle of the leaf's
// life.
func (t *TrustPool) verifyChain(c *Certificate) verdict {
	leaf := c.Leaf
	mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	if root := t.signedHere(c, mid); root != nil {
		return chainWindow(c, []*x509.Certificate{leaf, root})
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         t.pool,
		Intermediates: c.inter,
		CurrentTime:   mid,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return verdict{err: fmt.Errorf("%w: certificate of %s: %w", ErrUnauthenticated, c.Peer.ID, err)}
	}
	return chainWindow(c, chains[0])
}

// chainWindow is the verdict on a verified chain (leaf first): c's peer,
// valid while every certificate of the chain is.
func chainWindow(c *Certificate, chain []*x509.Certificate) verdict {
	leaf := chain[0]
	from, until := leaf.NotBefore, leaf.NotAfter
	for _, x := range chain[1:] {
		if x.NotBefore.After(from) {
			from = x.NotBefore
		}
		if x.NotAfter.Before(until) {
			until = x.NotAfter
		}
	}
	return verdict{peer: c.Peer, earliest: unixNano(from.Add(-MaxClockSkew)), latest: unixNano(until.Add(MaxClockSkew))}
}

// signedHere returns the root of t whose key signed c's leaf in this
// process (Shared.madeCert), when x509.Verify, given c at mid, could only
// build the chain leaf → that root and would accept it but for the
// signature, which the signing already checked: no intermediates, one
// root with the leaf's issuer name, both Ed25519, the root a plain CA
// (no name constraints, no policies) valid at mid, the leaf without
// critical extensions x509 does not handle or policies. Anything else,
// or a leaf this process did not sign, returns nil: x509.Verify decides.
func (t *TrustPool) signedHere(c *Certificate, mid time.Time) *x509.Certificate {
	if t.shared == nil || c.inter != nil || len(c.Chain) > 0 {
		return nil
	}
	leaf := c.Leaf
	parent := t.shared.tookCert(leaf.Raw)
	if parent == nil || leaf.SignatureAlgorithm != x509.PureEd25519 ||
		len(leaf.UnhandledCriticalExtensions) > 0 || hasPolicies(leaf) {
		return nil
	}
	var root *x509.Certificate
	for _, r := range t.roots {
		if bytes.Equal(r.RawSubject, leaf.RawIssuer) {
			if root != nil {
				return nil // two candidates: x509 chooses
			}
			root = r
		}
	}
	if root == nil || !bytes.Equal(root.Raw, parent.Raw) || !plainCA(root) ||
		mid.Before(root.NotBefore) || mid.After(root.NotAfter) {
		return nil
	}
	t.shared.issuedTaken++
	return root
}

// plainCA reports whether r is an Ed25519 CA certificate that may sign
// certificates and constrains nothing else in the chains under it.
func plainCA(r *x509.Certificate) bool {
	return r.BasicConstraintsValid && r.IsCA &&
		(r.KeyUsage == 0 || r.KeyUsage&x509.KeyUsageCertSign != 0) &&
		r.PublicKeyAlgorithm == x509.Ed25519 &&
		len(r.UnhandledCriticalExtensions) == 0 && !hasPolicies(r) &&
		!r.PermittedDNSDomainsCritical &&
		len(r.PermittedDNSDomains)+len(r.ExcludedDNSDomains)+
			len(r.PermittedIPRanges)+len(r.ExcludedIPRanges)+
			len(r.PermittedEmailAddresses)+len(r.ExcludedEmailAddresses)+
			len(r.PermittedURIDomains)+len(r.ExcludedURIDomains) == 0
}

// hasPolicies reports whether x names or constrains certificate policies.
func hasPolicies(x *x509.Certificate) bool {
	return len(x.Policies)+len(x.PolicyIdentifiers)+len(x.PolicyMappings) > 0 ||
		x.RequireExplicitPolicy != 0 || x.RequireExplicitPolicyZero ||
		x.InhibitPolicyMapping != 0 || x.InhibitPolicyMappingZero ||
		x.InhibitAnyPolicy != 0 || x.InhibitAnyPolicyZero
}
