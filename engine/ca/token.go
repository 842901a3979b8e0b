package ca

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"math/big"
	"strings"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// A join token reads SWMTKN-1-<digest>-<secret>: the digest of the root CA
// the joiner must find (50 base-36 characters of its SHA-256), and a
// secret of 128 random bits (25 base-36 characters). Workers and managers
// get different secrets; rotating one replaces it.
const (
	tokenPrefix  = "SWMTKN"
	tokenVersion = "1"
	digestLen    = 50
	secretLen    = 25
	secretBytes  = 16
	// TokenLen is the length of every valid token.
	TokenLen = len(tokenPrefix) + 1 + len(tokenVersion) + 1 + digestLen + 1 + secretLen
)

// JoinToken is a parsed join token.
type JoinToken struct {
	Digest string // of the root CA the joiner must trust
	Secret string
}

// String formats the token.
func (t JoinToken) String() string {
	return tokenPrefix + "-" + tokenVersion + "-" + t.Digest + "-" + t.Secret
}

// base36 writes b as n lowercase base-36 digits (zero-padded).
func base36(b []byte, n int) string {
	s := new(big.Int).SetBytes(b).Text(36)
	if len(s) < n {
		s = strings.Repeat("0", n-len(s)) + s
	}
	return s
}

// Digest is a root certificate's digest as join tokens carry it.
func Digest(root *x509.Certificate) string {
	if root == nil {
		return ""
	}
	h := sha256.Sum256(root.Raw)
	return base36(h[:], digestLen)
}

// NewJoinToken draws a token for root from r.
func NewJoinToken(root *x509.Certificate, r env.Rand) string {
	var b [secretBytes]byte
	_, _ = r.Read(b[:])
	return JoinToken{Digest: Digest(root), Secret: base36(b[:], secretLen)}.String()
}

// NewJoinTokens draws a worker and a manager token for root.
func NewJoinTokens(root *x509.Certificate, r env.Rand) *api.JoinTokens {
	return &api.JoinTokens{Worker: NewJoinToken(root, r), Manager: NewJoinToken(root, r)}
}

// ParseJoinToken checks a token's shape and splits it. It says nothing of
// whether the cluster accepts it (RoleOfToken).
func ParseJoinToken(s string) (JoinToken, error) {
	if len(s) != TokenLen {
		return JoinToken{}, fmt.Errorf("%w: %d characters, want %d", ErrInvalidToken, len(s), TokenLen)
	}
	parts := strings.Split(s, "-")
	if len(parts) != 4 || parts[0] != tokenPrefix || parts[1] != tokenVersion {
		return JoinToken{}, fmt.Errorf("%w: not a %s-%s token", ErrInvalidToken, tokenPrefix, tokenVersion)
	}
	t := JoinToken{Digest: parts[2], Secret: parts[3]}
	if len(t.Digest) != digestLen || len(t.Secret) != secretLen || !isBase36(t.Digest) || !isBase36(t.Secret) {
		return JoinToken{}, fmt.Errorf("%w: malformed digest or secret", ErrInvalidToken)
	}
	return t, nil
}

func isBase36(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// TokenEqual compares a presented token with an expected one in constant
// time (for tokens of the one valid length); an empty expected token
// matches nothing.
func TokenEqual(presented, expected string) bool {
	if expected == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(presented), []byte(expected)) == 1
}

// RoleOfToken says which role a presented token grants under the
// cluster's current tokens: manager, worker, or none. Both comparisons
// always run, so the time taken says nothing of which one matched.
func RoleOfToken(token string, tokens *api.JoinTokens) env.Role {
	if _, err := ParseJoinToken(token); err != nil {
		return env.RoleNone
	}
	mgr := TokenEqual(token, tokens.GetManager())
	wrk := TokenEqual(token, tokens.GetWorker())
	switch {
	case mgr:
		return env.RoleManager
	case wrk:
		return env.RoleWorker
	}
	return env.RoleNone
}
