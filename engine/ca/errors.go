package ca

import "errors"

// Sentinels every refusal of this package wraps; callers test them with
// errors.Is. realnet maps ErrUnauthenticated to gRPC Unauthenticated and
// ErrPermissionDenied to PermissionDenied.
var (
	// ErrUnauthenticated: no certificate, or one that does not verify
	// (unknown root, expired, not yet valid, malformed subject).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the peer's role may not use the method, or the
	// method is not in the authorization table.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrWrongCluster: the certificate belongs to another cluster.
	ErrWrongCluster = errors.New("certificate of another cluster")
	// ErrNodeRemoved: the node was removed from the cluster; its
	// certificate is refused from then on.
	ErrNodeRemoved = errors.New("node removed from the cluster")
	// ErrInvalidToken: a join token that is malformed, unknown or rotated.
	ErrInvalidToken = errors.New("invalid join token")
	// ErrBadRequest: a malformed CSR, certificate or message.
	ErrBadRequest = errors.New("bad certificate request")
	// ErrRootMismatch: the root CA a manager sent does not match the
	// digest in the join token.
	ErrRootMismatch = errors.New("root CA does not match the join token")
)
