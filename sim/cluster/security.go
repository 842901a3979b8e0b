package cluster

import (
	"fmt"
	"strconv"
	"time"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/ca"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/node"
	"github.com/swarmsim/swarmsim/sim"
)

// security is the simulated cluster's PKI plumbing: the root `swarmd init`
// would create, the certificate each node presents, and the handshake a
// mutual-TLS transport does before a message reaches a node.
type security struct {
	boot *ca.Bootstrap
	// shared is the parsed roots and trust pools every node shares.
	shared *ca.Shared
	stats  SecurityStats
}

// SecurityStats count the simulated handshakes.
type SecurityStats struct {
	// Refused counts messages dropped because one end refused the other's
	// certificate (unknown root, expired, not yet valid): the connection
	// would not have been made.
	Refused uint64
	// RefusedBy counts them by the node that refused.
	RefusedBy map[string]uint64
}

// initCA creates the cluster's root and join tokens, as `swarmd init`
// does, from the cluster's own stream; the managers of the fixed cluster
// get their credentials on their disks before they first start (as if
// each had been set up by init), every other node joins with a token.
func (c *Cluster) initCA() error {
	r := c.K.NewRand("cluster/ca")
	now := sim.Epoch.Add(c.K.Now())
	b, err := ca.NewBootstrap(r, now)
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	c.sec.boot = b
	for _, m := range c.machines {
		if !m.bootstrap {
			continue
		}
		creds, err := b.Issue(env.NodeID(m.Name), env.RoleManager, r, now, c.certExpiry())
		if err != nil {
			return fmt.Errorf("credentials of %s: %w", m.Name, err)
		}
		if err := ca.Provision(m.Disk, creds); err != nil {
			return fmt.Errorf("credentials of %s: %w", m.Name, err)
		}
		m.Disk.Flush()
	}
	return nil
}

func (c *Cluster) certExpiry() time.Duration {
	return time.Duration(c.cfg.Cluster.GetCa().GetNodeCertExpiry())
}

// JoinTokens are the cluster's join tokens now: the leader's, or the ones
// init drew while there is no leader.
func (c *Cluster) JoinTokens() *api.JoinTokens {
	if lm, ok := c.Leader(); ok {
		if t := lm.Engine.Manager().CA().JoinTokens(); t.GetWorker() != "" {
			return t
		}
	}
	if c.sec.boot == nil {
		return nil
	}
	return c.sec.boot.Tokens
}

// caConfig is a machine's CA client settings, for a boot: until the node
// says which certificate its disk holds, it presents none.
func (c *Cluster) caConfig(m *Machine) ca.Config {
	m.cert = nil
	token := m.joinToken
	if token == "" {
		if t := c.JoinTokens(); m.Manager {
			token = t.GetManager()
		} else {
			token = t.GetWorker()
		}
	}
	return ca.Config{
		JoinToken: token,
		Name:      m.Name,
		Managers:  c.managerNames(),
		OnCertificate: func(cr *ca.Credentials) {
			m.cert = cr.Cert
			m.Endpoint.SetIdentity(cr.Cert.Peer) // its name is the machine's own string (ca.Client.shareName)
		},
		OnDecision: c.cfg.OnDecision,
		Rand:       m.Kernel.Rand("ca/" + strconv.Itoa(m.incarnation)),
		Shared:     c.sec.shared,
	}
}

// Certificate is what the node called name presents now, nil before it
// has one.
func (c *Cluster) Certificate(name string) *ca.Certificate {
	if m := c.byName[name]; m != nil {
		return m.cert
	}
	return nil
}

// SecurityStats returns the handshake counters.
func (c *Cluster) SecurityStats() SecurityStats { return c.sec.stats }

// deliverTo is machine m's inbound path: the handshake of a mutual-TLS
// connection, then the node. Each end checks the certificate the other
// presents, with its own roots and its own clock; a message reaches the
// node only if both accept, and the identity it carries is the one the
// sender's certificate names, whatever the sender's endpoint claims.
func (c *Cluster) deliverTo(m *Machine, eng *node.Node) func(int, env.Peer, env.Message) {
	self := env.NodeID(m.Name)
	return func(src int, from env.Peer, msg env.Message) {
		if eng.Locked() {
			return // waiting for its unlock key, it runs nothing, not even TLS
		}
		// The sender's machine: the certificate it presents and the engine
		// that checks ours. It is the machine called from.ID, found by the
		// sending node's index when that machine goes by that name (a slice
		// read, where a lookup by name missed the cache on most messages).
		var s *Machine
		if src < len(c.byNode) {
			s = c.byNode[src]
		}
		if s == nil || s.Name != string(from.ID) {
			s = c.byName[string(from.ID)]
		}
		var cert *ca.Certificate
		if s != nil {
			cert = s.cert
		}
		peer, err := eng.CA().VerifyPeer(from.ID, cert)
		if err == nil {
			if s != nil && s.Engine != nil {
				if s.Engine.Locked() {
					return // sent before its machine restarted locked: that connection is gone
				}
				_, err = s.Engine.CA().VerifyPeer(self, m.cert)
				if err != nil {
					c.refused(s.Name, err)
					return
				}
			}
		} else {
			c.refused(m.Name, err)
			return
		}
		eng.Handle(peer, msg)
	}
}

func (c *Cluster) refused(by string, err error) {
	c.sec.stats.Refused++
	if c.sec.stats.RefusedBy == nil {
		c.sec.stats.RefusedBy = map[string]uint64{}
	}
	c.sec.stats.RefusedBy[by]++
	if c.K.Tracing() {
		c.K.Note("handshake refused by %s: %v", by, err)
	}
}
