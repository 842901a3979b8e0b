package raft

// EntryProposals returns the proposals a normal entry's data carries, in
// order: none for raft's empty entries, one for a single proposal, several
// for a packed entry. Checkers outside the code under test use it to
// rebuild the committed state from the entries observers see.
func EntryProposals(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	_, refs, err := decodeEntry(data, nil)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(refs))
	for i, r := range refs {
		out[i] = r.data
	}
	return out, nil
}

// MaxProposalBytes is the largest proposal Propose accepts
// (Config.MaxProposalBytes after defaults).
func (n *Node) MaxProposalBytes() int { return n.cfg.MaxProposalBytes }
