package realnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// testCA issues node certificates the way the security work will: CN the
// node ID, OU its role, O the cluster.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, id, ou string, serial int64) *TLSConfig {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: id, OrganizationalUnit: []string{ou}, Organization: []string{"cluster1"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return &TLSConfig{
		Server: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{c}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool},
		Client: &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{c}, RootCAs: ca.pool},
	}
}

// With TLS, the receiver knows the sender from its verified certificate:
// role and cluster come from there, whatever the hello claims, and no
// token travels.
func TestTransportTLSIdentity(t *testing.T) {
	ca := newTestCA(t)
	start := func(id env.NodeID, claim env.Role, tc *TLSConfig) *testNode {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &testNode{loop: NewLoop(), addr: lis.Addr().String(), cond: make(chan struct{}, 1)}
		n.tr, err = NewTransport(TransportConfig{ID: id, Addr: n.addr, Loop: n.loop, Role: claim, TLS: tc, Token: "secret",
			Admit: AdmitFunc(func(Hello) (env.Peer, error) {
				t.Error("the admitter ran on a TLS connection")
				return env.Peer{}, ErrUnauthenticated
			})})
		if err != nil {
			t.Fatal(err)
		}
		n.tr.SetHandler(func(from env.Peer, m env.Message) {
			n.mu.Lock()
			n.got, n.from = append(n.got, m), append(n.from, from)
			n.mu.Unlock()
			select {
			case n.cond <- struct{}{}:
			default:
			}
		})
		n.srv = grpc.NewServer(ServerOptions(tc, 0, nil)...)
		n.tr.Register(n.srv)
		go n.srv.Serve(lis)
		t.Cleanup(func() { n.tr.Close(); n.srv.Stop(); n.loop.Stop() })
		return n
	}
	m := start("m", env.RoleManager, ca.issue(t, "m", OUManager, 2))
	w := start("w", env.RoleManager, ca.issue(t, "w", OUWorker, 3)) // claims manager; its certificate says worker
	w.tr.Book().Learn("m", m.addr, true, AddrStatic)
	w.tr.Send("m", &api.Heartbeat{SessionId: "tls"})
	m.waitFor(t, 1)
	m.mu.Lock()
	from := m.from[0]
	m.mu.Unlock()
	if from != (env.Peer{ID: "w", Role: env.RoleWorker, Org: "cluster1"}) {
		t.Fatalf("peer over TLS: %+v", from)
	}

	// A node without a certificate from the cluster's CA is refused.
	other := newTestCA(t)
	x := start("x", env.RoleManager, other.issue(t, "x", OUManager, 4))
	x.tr.Book().Learn("m", m.addr, true, AddrStatic)
	x.tr.Send("m", &api.Heartbeat{SessionId: "intruder"})
	for x.tr.PeerStats("m").Lost == 0 && !ctxDone(t) {
		time.Sleep(10 * time.Millisecond)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.got) != 1 {
		t.Fatalf("a node of another CA got a message through: %v", m.got)
	}
}
