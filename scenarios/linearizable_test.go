package scenarios

import (
	"testing"
	"time"
)

func TestCheckLinearizable(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	cases := []struct {
		name string
		ops  []ClientOp
		want bool
	}{
		{"write then read sees it", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "k", Value: "1", Call: ms(0), Done: ms(1)},
			{Client: 1, Kind: OpRead, Key: "k", Value: "1", Call: ms(2), Done: ms(3)},
		}, true},
		{"stale read after write returned", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "k", Value: "1", Call: ms(0), Done: ms(1)},
			{Client: 1, Kind: OpRead, Key: "k", Value: "", Call: ms(2), Done: ms(3)},
		}, false},
		{"concurrent read may see either", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "k", Value: "1", Call: ms(0), Done: ms(5)},
			{Client: 1, Kind: OpRead, Key: "k", Value: "", Call: ms(1), Done: ms(2)},
		}, true},
		{"unknown write may show up later", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "k", Value: "1", Call: ms(0), Unknown: true},
			{Client: 1, Kind: OpRead, Key: "k", Value: "", Call: ms(10), Done: ms(11)},
			{Client: 1, Kind: OpRead, Key: "k", Value: "1", Call: ms(12), Done: ms(13)},
		}, true},
		{"value appears from nowhere", []ClientOp{
			{Client: 1, Kind: OpRead, Key: "k", Value: "9", Call: ms(0), Done: ms(1)},
		}, false},
		{"cas succeeds only on match", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "k", Value: "a", Call: ms(0), Done: ms(1)},
			{Client: 1, Kind: OpCAS, Key: "k", Old: "b", Value: "c", OK: true, Call: ms(2), Done: ms(3)},
		}, false},
		{"failed cas with a match is wrong", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "k", Value: "a", Call: ms(0), Done: ms(1)},
			{Client: 1, Kind: OpCAS, Key: "k", Old: "a", Value: "c", OK: false, Call: ms(2), Done: ms(3)},
		}, false},
		{"keys are independent", []ClientOp{
			{Client: 0, Kind: OpWrite, Key: "a", Value: "1", Call: ms(0), Done: ms(1)},
			{Client: 1, Kind: OpRead, Key: "b", Value: "", Call: ms(2), Done: ms(3)},
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, detail := CheckLinearizable(c.ops, 10*time.Second); got != c.want {
				t.Fatalf("linearizable = %v (%s), want %v", got, detail, c.want)
			}
		})
	}
}
