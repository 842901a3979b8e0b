// Package ca is the cluster's certificate authority and the node
// identity built on it, in both worlds: the root CA, join tokens, node
// certificates and their renewal, root rotation, and the authorization
// table that every inbound message and RPC goes through.
//
// What it owns:
//
//   - The root. `swarmd init` (NewBootstrap) creates an Ed25519 root whose
//     organization is the cluster's identity, and the first join tokens;
//     the root's key lives in the store's Cluster.root_ca, so every manager
//     can sign and no worker ever sees it.
//   - Join tokens, SWMTKN-1-<digest of the root>-<secret>, one for workers
//     and one for managers. A manager compares a presented token with both
//     in constant time; a joiner trusts only the root whose digest its
//     token names. RotateJoinToken replaces one; the old one gets nothing.
//   - Node certificates (Client, Server). A node with no certificate on its
//     disk draws a key, sends a CSR with its token (IssueNodeCertificate),
//     and the manager records the node and signs CN=node ID, OU=role,
//     O=cluster, valid 90 days by default (backdated by an hour). The node
//     checks the answer against the token's digest, keeps key, certificate
//     and roots on its disk, and only then uses them. It renews at a random
//     point between 50% and 80% of the certificate's life by its own clock,
//     authenticated by its current certificate; the manager signs the role
//     the cluster wants now (promotion and demotion reissue), and refuses
//     removed nodes for good.
//   - Root rotation. RotateRootCA makes a new root, cross-signed by the
//     old one: a leaf of the new root presented with the cross-signed
//     certificate verifies for nodes that still trust only the old root,
//     so nobody loses contact. Nodes trust both roots meanwhile, renew, and
//     report the leaf they use; the leader reminds the stragglers and
//     finishes the rotation (new root only, new join tokens) once every
//     live node uses a leaf of the new root.
//   - Verification (TrustPool, Client.VerifyPeer): chains to a trusted root,
//     validity checked against the verifier's clock with MaxClockSkew of
//     tolerance either way. The simulator calls it on both ends of every
//     delivery, as a mutual-TLS handshake; realnet's TLS does the same
//     (TLSConfig).
//   - Authorization (Authorize, Client.Admit): one table from every method
//     to the roles that may send it, failing closed; on managers, a sender
//     whose node was removed is refused, in O(1) (a store lookup).
//
// What it must never do: trust anything an answer says before it is
// verified (digest, chain, key, node ID), let a joiner pick the role or
// the subject of its certificate, compare tokens in variable time, log a
// token or a key, or do I/O, start goroutines, read the wall clock or draw
// randomness other than from env.Rand (keys, serials and request IDs come
// from the node's stream, so the simulator replays them).
package ca
