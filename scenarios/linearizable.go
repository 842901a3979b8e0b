package scenarios

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// OpKind is what a scenario client asked of the cluster's key space.
type OpKind uint8

const (
	OpRead OpKind = iota
	OpWrite
	OpCAS
)

func (k OpKind) String() string {
	return [...]string{"read", "write", "cas"}[k]
}

// ClientOp is one operation a scenario client made, as the checker sees
// it: when it was called and when it returned, in virtual time.
type ClientOp struct {
	Client int
	Kind   OpKind
	Key    string
	// Value is the value written (write, cas) or read (read).
	Value string
	// Old is what a cas expected.
	Old string
	// OK is a cas's verdict.
	OK bool
	// Unknown marks an operation whose outcome the client never learned
	// (timeout, leadership lost): it may or may not have taken effect.
	Unknown    bool
	Call, Done time.Duration
}

type kvInput struct {
	kind            OpKind
	key, value, old string
}

type kvOutput struct {
	value   string
	ok      bool
	unknown bool
}

// kvModel is a register per key; porcupine checks keys independently.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, seen := byKey[k]; !seen {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out, st := input.(kvInput), output.(kvOutput), state.(string)
		switch in.kind {
		case OpRead:
			return out.value == st, st
		case OpWrite:
			return true, in.value
		default: // cas
			if out.unknown {
				// It may have happened: if it linearizes here, it applied
				// exactly when the expected value was there.
				if st == in.old {
					return true, in.value
				}
				return true, st
			}
			if out.ok {
				return st == in.old, in.value
			}
			return st != in.old, st
		}
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch {
		case in.kind == OpRead:
			return fmt.Sprintf("read(%s) -> %q", in.key, out.value)
		case in.kind == OpWrite:
			return fmt.Sprintf("write(%s, %q)", in.key, in.value)
		default:
			return fmt.Sprintf("cas(%s, %q -> %q) -> %v", in.key, in.old, in.value, out.ok)
		}
	},
}

// CheckLinearizable reports whether the clients' history is linearizable.
// Reads whose outcome is unknown say nothing and are dropped; writes and
// cas operations whose outcome is unknown stay open forever (they may take
// effect at any point after their call).
func CheckLinearizable(ops []ClientOp, timeout time.Duration) (ok bool, detail string) {
	hist := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.Unknown && op.Kind == OpRead {
			continue
		}
		ret := int64(op.Done)
		if op.Unknown {
			ret = math.MaxInt64
		}
		hist = append(hist, porcupine.Operation{
			ClientId: op.Client,
			Input:    kvInput{kind: op.Kind, key: op.Key, value: op.Value, old: op.Old},
			Call:     int64(op.Call),
			Output:   kvOutput{value: op.Value, ok: op.OK, unknown: op.Unknown},
			Return:   ret,
		})
	}
	res, _ := porcupine.CheckOperationsVerbose(kvModel, hist, timeout)
	switch res {
	case porcupine.Ok:
		return true, ""
	case porcupine.Unknown:
		// The checker ran out of time: that proves nothing either way, and
		// a run must not fail on it.
		return true, fmt.Sprintf("linearizability check of %d operations timed out after %v: not proven", len(hist), timeout)
	default:
		return false, fmt.Sprintf("history of %d operations is not linearizable", len(hist))
	}
}
