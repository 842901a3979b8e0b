package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// handshake runs one TLS handshake over a pipe and returns what each side
// learnt of the other.
func handshake(t *testing.T, server, client *tls.Config) (toServer, toClient env.Peer, err error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback TCP:", err)
	}
	defer ln.Close()
	type result struct {
		p   env.Peer
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		sc := tls.Server(conn, server)
		if err := sc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		p, err := PeerFromState(sc.ConnectionState())
		done <- result{p, err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc := tls.Client(conn, client)
	cerr := cc.Handshake()
	if cerr == nil {
		toClient, cerr = PeerFromState(cc.ConnectionState())
	}
	r := <-done
	return r.p, toClient, errors.Join(cerr, r.err)
}

func TestTLSConfigs(t *testing.T) {
	r := newSeeded(11)
	b, err := NewBootstrap(r, t0)
	if err != nil {
		t.Fatal(err)
	}
	mgr, _ := b.Issue("m1", env.RoleManager, r, t0, time.Hour)
	wrk, _ := b.Issue("w1", env.RoleWorker, r, t0, time.Hour)
	now := func() time.Time { return t0 }
	src := func(c *Credentials) CredentialsSource { return func() *Credentials { return c } }

	s, c, err := handshake(t, ServerTLSConfig(src(mgr), now), ClientTLSConfig(src(wrk), now, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "w1" || s.Role != env.RoleWorker || c.ID != "m1" || c.Role != env.RoleManager || s.Org != b.Root.Org() {
		t.Fatalf("server saw %+v, client saw %+v", s, c)
	}

	// A joiner presents nothing and pins the root its token names.
	pins, err := JoinPins(b.Tokens.Worker, []*x509.Certificate{b.Root.Cert})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err = handshake(t, ServerTLSConfig(src(mgr), now), ClientTLSConfig(src(nil), now, func() []*x509.Certificate { return pins }))
	if err != nil || s.Role != env.RoleNone {
		t.Fatalf("joiner: %+v, %v", s, err)
	}

	// A worker may not serve; an expired certificate is refused; a
	// stranger's root is refused.
	if _, _, err := handshake(t, ServerTLSConfig(src(wrk), now), ClientTLSConfig(src(mgr), now, nil)); err == nil {
		t.Error("a client accepted a worker as its server")
	}
	late := func() time.Time { return t0.Add(2 * time.Hour) }
	if _, _, err := handshake(t, ServerTLSConfig(src(mgr), late), ClientTLSConfig(src(wrk), now, nil)); err == nil {
		t.Error("a server accepted an expired client certificate")
	}
	other, _ := NewBootstrap(r, t0)
	stranger, _ := other.Issue("w9", env.RoleWorker, r, t0, time.Hour)
	if _, _, err := handshake(t, ServerTLSConfig(src(mgr), now), ClientTLSConfig(src(stranger), now, nil)); err == nil {
		t.Error("a server accepted a certificate of another cluster's root")
	}
}
