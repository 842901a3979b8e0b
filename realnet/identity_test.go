package realnet

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
)

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:4242", true},
		{"127.0.0.2:1", true},
		{"localhost:80", true},
		{"[::1]:4242", true},
		{":4242", false},
		{"0.0.0.0:4242", false},
		{"10.0.0.1:4242", false},
		{"example.com:1", false},
		{"nonsense", false},
	} {
		err := CheckListen(tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureListen) {
			t.Errorf("CheckListen(%q): %v does not wrap ErrInsecureListen", tc.addr, err)
		}
	}
}

func TestRoleOfToken(t *testing.T) {
	tokens := &api.JoinTokens{Worker: "SWMTKN-1-w", Manager: "SWMTKN-1-m"}
	for tok, want := range map[string]env.Role{
		"SWMTKN-1-w": env.RoleWorker, "SWMTKN-1-m": env.RoleManager,
		"": env.RoleNone, "SWMTKN-1-": env.RoleNone, "SWMTKN-1-mm": env.RoleNone,
	} {
		if got := RoleOfToken(tok, tokens); got != want {
			t.Errorf("RoleOfToken(%q) = %s, want %s", tok, got, want)
		}
	}
	if RoleOfToken("", &api.JoinTokens{}) != env.RoleNone {
		t.Error("an empty token matched an empty expected token")
	}
}

func TestJoinTable(t *testing.T) {
	tab := JoinTable()
	w := env.Peer{ID: "w", Role: env.RoleWorker}
	m := env.Peer{ID: "m", Role: env.RoleManager}
	none := env.Peer{ID: "x"}
	for _, tc := range []struct {
		p      env.Peer
		method string
		ok     bool
	}{
		{w, api.MethodSessionRequest, true},
		{w, raft.MethodStep, false},
		{w, api.MethodRaftJoin, false},
		{m, api.MethodRaftJoin, true},
		{none, api.MethodSessionRequest, false},
		{none, "/swarm.Control/ListServices", true}, // not in the table yet
	} {
		err := tab.Authorize(tc.p, tc.method)
		if (err == nil) != tc.ok {
			t.Errorf("%s %s: %v, want ok=%v", tc.p.Role, tc.method, err, tc.ok)
		}
	}
}

func TestPeerFromCert(t *testing.T) {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "node1", OrganizationalUnit: []string{OUManager}, Organization: []string{"cluster9"}}}
	p, err := PeerFromCert(c)
	if err != nil || p != (env.Peer{ID: "node1", Role: env.RoleManager, Org: "cluster9"}) {
		t.Fatalf("PeerFromCert = %+v, %v", p, err)
	}
	if _, err := PeerFromCert(&x509.Certificate{Subject: pkix.Name{CommonName: "n"}}); err == nil {
		t.Fatal("a certificate without a role was accepted")
	}
}

func mustCIDR(t *testing.T, s string) net.Addr {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}
