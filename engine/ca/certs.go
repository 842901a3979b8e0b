package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// The organizational units that name a node's role in its certificate, as
// in SwarmKit.
const (
	OUManager = "swarm-manager"
	OUWorker  = "swarm-worker"
)

const (
	// DefaultNodeCertExpiry is a node certificate's lifetime when the
	// cluster spec sets none.
	DefaultNodeCertExpiry = 90 * 24 * time.Hour
	// RootCertExpiry is a root certificate's lifetime.
	RootCertExpiry = 20 * 365 * 24 * time.Hour
	// Backdate moves every certificate's NotBefore back from the moment it
	// is signed, so that a node whose clock runs behind the signer's does
	// not see a brand new certificate as not valid yet.
	Backdate = time.Hour
	// MaxClockSkew is how far past its NotAfter (or before its NotBefore)
	// a certificate is still accepted: the clock difference between two
	// nodes that validation tolerates. A node whose clock runs further
	// ahead refuses its peers' certificates near their end (see
	// scenarios/security-cert-expiry-clock-skew.yaml).
	MaxClockSkew = 5 * time.Minute
	// rootCN is the common name of every root; roots of one cluster differ
	// by key (and key ID), not by name, so a cross-signed new root chains
	// to the old one.
	rootCN = "swarm-ca"
)

// randReader reads env.Rand as an io.Reader, for the crypto/x509 calls
// that take one. Ed25519 signing draws nothing; serials are given.
type randReader struct{ r env.Rand }

func (rr randReader) Read(p []byte) (int, error) { return rr.r.Read(p) }

// NewKey draws an Ed25519 key from r: in the simulator a seeded stream, so
// keys replay with the seed; in real mode crypto-quality randomness.
func NewKey(r env.Rand) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = r.Read(seed)
	return ed25519.NewKeyFromSeed(seed)
}

// newSerial draws a positive 127-bit serial number.
func newSerial(r env.Rand) *big.Int {
	var b [16]byte
	_, _ = r.Read(b[:])
	b[0] &= 0x7f
	n := new(big.Int).SetBytes(b[:])
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n
}

// keyID is a public key's identifier (SHA-1 of the key, as RFC 5280
// suggests); roots and cross-signed roots name their key with it and
// leaves name their issuer's.
func keyID(pub ed25519.PublicKey) []byte {
	h := sha1.Sum(pub)
	return h[:]
}

// RoleOU is the organizational unit naming role.
func RoleOU(role env.Role) string {
	if role == env.RoleManager {
		return OUManager
	}
	return OUWorker
}

// RootCA is a cluster root: its certificate and, on managers, its key.
type RootCA struct {
	Cert *x509.Certificate
	Key  ed25519.PrivateKey // nil where the root is only trusted
}

// NewRootCA creates the root of a new cluster (`swarmd init`), valid from
// now (backdated) for RootCertExpiry. Its organization, drawn here, is the
// cluster's identity: every node certificate carries it.
func NewRootCA(r env.Rand, now time.Time) (*RootCA, error) {
	return newRoot(r, now, api.NewID(r))
}

func newRoot(r env.Rand, now time.Time, org string) (*RootCA, error) {
	key := NewKey(r)
	pub := key.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(r),
		Subject:               pkix.Name{CommonName: rootCN, Organization: []string{org}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(RootCertExpiry),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1, // a cross-signed root sits between it and a leaf
		SubjectKeyId:          keyID(pub),
	}
	der, err := x509.CreateCertificate(randReader{r}, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("create root certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse root certificate: %w", err)
	}
	return &RootCA{Cert: cert, Key: key}, nil
}

// Org is the cluster the root belongs to.
func (r *RootCA) Org() string { return orgOf(r.Cert) }

func orgOf(c *x509.Certificate) string {
	if c == nil || len(c.Subject.Organization) == 0 {
		return ""
	}
	return c.Subject.Organization[0]
}

// Digest is the root's digest as join tokens carry it.
func (r *RootCA) Digest() string { return Digest(r.Cert) }

// NewRotation starts a root rotation: a new root of the same cluster, and
// that root's certificate cross-signed by r, so that a node trusting only
// r verifies leaves of the new root through it.
func (r *RootCA) NewRotation(rnd env.Rand, now time.Time) (next *RootCA, cross *x509.Certificate, err error) {
	if r.Key == nil {
		return nil, nil, fmt.Errorf("%w: the current root's key is not here", ErrBadRequest)
	}
	next, err = newRoot(rnd, now, r.Org())
	if err != nil {
		return nil, nil, err
	}
	notAfter := next.Cert.NotAfter
	if r.Cert.NotAfter.Before(notAfter) {
		notAfter = r.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(rnd),
		Subject:               next.Cert.Subject,
		NotBefore:             now.Add(-Backdate),
		NotAfter:              notAfter,
		KeyUsage:              next.Cert.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaves only
		SubjectKeyId:          next.Cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(randReader{rnd}, tmpl, r.Cert, next.Key.Public(), r.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("cross-sign the new root: %w", err)
	}
	cross, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the cross-signed root: %w", err)
	}
	return next, cross, nil
}

// Issue signs a node certificate for id with role, valid from now
// (backdated by Backdate) for expiry. The subject is the CA's to write:
// CN the node ID, OU the role, O the cluster.
func (r *RootCA) Issue(pub ed25519.PublicKey, id env.NodeID, role env.Role, now time.Time, expiry time.Duration, rnd env.Rand) (*x509.Certificate, error) {
	der, err := r.IssueDER(pub, id, role, now, expiry, rnd)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the certificate of %s: %w", id, err)
	}
	return cert, nil
}

// IssueDER is Issue without parsing the certificate it made: the CA
// sends and records the DER, and the parse it never used was a fifth of
// the allocations of issuing a certificate.
func (r *RootCA) IssueDER(pub ed25519.PublicKey, id env.NodeID, role env.Role, now time.Time, expiry time.Duration, rnd env.Rand) ([]byte, error) {
	if r.Key == nil {
		return nil, fmt.Errorf("%w: the root's key is not here", ErrBadRequest)
	}
	if err := ValidNodeID(string(id)); err != nil {
		return nil, err
	}
	if role != env.RoleWorker && role != env.RoleManager {
		return nil, fmt.Errorf("%w: no certificate for role %s", ErrBadRequest, role)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: not an Ed25519 public key", ErrBadRequest)
	}
	if expiry <= 0 {
		expiry = DefaultNodeCertExpiry
	}
	ou := RoleOU(role)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(rnd),
		Subject:               pkix.Name{CommonName: string(id), OrganizationalUnit: []string{ou}, Organization: []string{r.Org()}},
		DNSNames:              []string{string(id), ou},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(expiry),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(randReader{rnd}, tmpl, r.Cert, pub, r.Key)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate of %s: %w", id, err)
	}
	return der, nil
}

// ValidNodeID checks a node ID a joiner asks for: 1 to 64 letters, digits,
// dots, dashes or underscores.
func ValidNodeID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: node ID %q must have 1 to 64 characters", ErrBadRequest, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("%w: node ID %q has a character other than letters, digits, '.', '-' and '_'", ErrBadRequest, id)
		}
	}
	return nil
}

// PeerFromCertificate reads a node's identity from its certificate: CN is
// the node ID, OU the role, O the cluster. It does not verify the
// certificate: use it on a verified chain's leaf (realnet: the first
// certificate of tls.ConnectionState.VerifiedChains[0]).
func PeerFromCertificate(c *x509.Certificate) (env.Peer, error) {
	if c == nil {
		return env.Peer{}, fmt.Errorf("%w: no certificate", ErrUnauthenticated)
	}
	p := env.Peer{ID: env.NodeID(c.Subject.CommonName)}
	if err := ValidNodeID(string(p.ID)); err != nil {
		return env.Peer{}, fmt.Errorf("%w: certificate subject: %w", ErrUnauthenticated, err)
	}
	if len(c.Subject.OrganizationalUnit) != 1 {
		return env.Peer{}, fmt.Errorf("%w: certificate of %s names %d roles", ErrUnauthenticated, p.ID, len(c.Subject.OrganizationalUnit))
	}
	switch c.Subject.OrganizationalUnit[0] {
	case OUManager:
		p.Role = env.RoleManager
	case OUWorker:
		p.Role = env.RoleWorker
	default:
		return env.Peer{}, fmt.Errorf("%w: certificate of %s names no swarm role", ErrUnauthenticated, p.ID)
	}
	if len(c.Subject.Organization) != 1 || c.Subject.Organization[0] == "" {
		return env.Peer{}, fmt.Errorf("%w: certificate of %s names no cluster", ErrUnauthenticated, p.ID)
	}
	p.Org = c.Subject.Organization[0]
	return p, nil
}

// ---- certificate signing requests

// NewCSR makes a certificate signing request for key: only its public key
// and the proof of possession count, so the subject is left empty.
func NewCSR(key ed25519.PrivateKey, r env.Rand) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(randReader{r}, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("create CSR: %w", err)
	}
	return der, nil
}

// maxCSRBytes bounds a CSR before it is parsed.
const maxCSRBytes = 4096

// ParseCSR decodes a DER certificate request, checks its self-signature
// (the sender holds the key) and returns its Ed25519 public key.
func ParseCSR(der []byte) (ed25519.PublicKey, error) { return parseCSR(der, true) }

// parseCSR is ParseCSR; checkSig false skips the signature check, for
// bytes whose signature was checked already (Shared.tookCSR).
func parseCSR(der []byte, checkSig bool) (ed25519.PublicKey, error) {
	if len(der) == 0 || len(der) > maxCSRBytes {
		return nil, fmt.Errorf("%w: CSR of %d bytes", ErrBadRequest, len(der))
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	pub, ok := csr.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: CSR key is %T, not Ed25519", ErrBadRequest, csr.PublicKey)
	}
	if checkSig {
		if err := csr.CheckSignature(); err != nil {
			return nil, fmt.Errorf("%w: CSR signature: %w", ErrBadRequest, err)
		}
	}
	return pub, nil
}

// ---- a node's certificate as it presents it

// Certificate is a node certificate as its holder presents it: the leaf,
// the intermediates that chain it to a root (the cross-signed new root
// during a rotation), and the identity the leaf names. It is parsed once
// and never changed, so the verdicts reached on it stay true: it keeps
// them, one per root set (TrustPool.chainVerdict). Like everything in
// engine/, it is used from one loop at a time (a real node parses what
// each connection presents; the simulator runs every node on one
// goroutine).
type Certificate struct {
	// first and more are the verdicts reached on it, one per root set
	// (TrustPool.chainVerdict), oldest first. The check of every message
	// reads first and hasFirst: they come first, in the first two cache
	// lines, which a manager reading a worker's certificate fetches cold.
	first    rootsVerdict
	hasFirst bool
	Leaf     *x509.Certificate
	Chain    []*x509.Certificate
	Peer     env.Peer
	inter    *x509.CertPool
	more     []rootsVerdict
}

// NewCertificate wraps a leaf and its intermediates.
func NewCertificate(leaf *x509.Certificate, chain []*x509.Certificate) (*Certificate, error) {
	p, err := PeerFromCertificate(leaf)
	if err != nil {
		return nil, err
	}
	c := &Certificate{Leaf: leaf, Chain: chain, Peer: p}
	if len(chain) > 0 { // most leaves have none: spare them an empty pool
		c.inter = x509.NewCertPool()
		for _, x := range chain {
			c.inter.AddCert(x)
		}
	}
	return c, nil
}

// maxChain bounds the intermediates of a presented chain.
const maxChain = 4

// ParseCertificate decodes a leaf and its intermediates (DER).
func ParseCertificate(leaf []byte, chain [][]byte) (*Certificate, error) {
	if len(chain) > maxChain {
		return nil, fmt.Errorf("%w: chain of %d certificates", ErrBadRequest, len(chain))
	}
	l, err := x509.ParseCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: leaf: %w", ErrBadRequest, err)
	}
	var cs []*x509.Certificate
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: chain[%d]: %w", ErrBadRequest, i, err)
		}
		cs = append(cs, c)
	}
	return NewCertificate(l, cs)
}

// IssuedAt is when the leaf was signed (its NotBefore without the
// backdating).
func (c *Certificate) IssuedAt() time.Time { return c.Leaf.NotBefore.Add(Backdate) }

// IssuedBy reports whether root's key signed the leaf.
func (c *Certificate) IssuedBy(root *x509.Certificate) bool {
	if root == nil {
		return false
	}
	if !bytes.Equal(c.Leaf.AuthorityKeyId, root.SubjectKeyId) {
		return false
	}
	return c.Leaf.CheckSignatureFrom(root) == nil
}

// PublicKey is the leaf's Ed25519 key.
func (c *Certificate) PublicKey() ed25519.PublicKey {
	k, _ := c.Leaf.PublicKey.(ed25519.PublicKey)
	return k
}

// ChainDER is the intermediates in DER.
func (c *Certificate) ChainDER() [][]byte {
	out := make([][]byte, len(c.Chain))
	for i, x := range c.Chain {
		out[i] = x.Raw
	}
	return out
}

// ---- PEM, for the store and the disk

const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY"
)

// EncodeCertsPEM encodes certificates as PEM blocks, in order.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: pemCert, Bytes: c.Raw})
	}
	return b.Bytes()
}

// ParseCertsPEM decodes every CERTIFICATE block of data, in order.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(data) > 0 {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != pemCert {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no certificate in PEM data", ErrBadRequest)
	}
	return out, nil
}

// EncodeKeyPEM encodes an Ed25519 key as PKCS#8 PEM.
func EncodeKeyPEM(key ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic("ca: marshal an Ed25519 key: " + err.Error()) // cannot fail for Ed25519
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: der})
}

// ParseKeyPEM decodes a PKCS#8 PEM Ed25519 key.
func ParseKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != pemKey {
		return nil, fmt.Errorf("%w: no private key in PEM data", ErrBadRequest)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is %T, not Ed25519", ErrBadRequest, k)
	}
	return key, nil
}

// ParseRootCA reads a root from the store's PEM (key optional).
func ParseRootCA(certPEM, keyPEM []byte) (*RootCA, error) {
	certs, err := ParseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	r := &RootCA{Cert: certs[0]}
	if len(keyPEM) > 0 {
		if r.Key, err = ParseKeyPEM(keyPEM); err != nil {
			return nil, err
		}
		if !bytes.Equal(r.Key.Public().(ed25519.PublicKey), publicKey(r.Cert)) {
			return nil, fmt.Errorf("%w: root key does not match its certificate", ErrBadRequest)
		}
	}
	return r, nil
}

func publicKey(c *x509.Certificate) ed25519.PublicKey {
	k, _ := c.PublicKey.(ed25519.PublicKey)
	return k
}
