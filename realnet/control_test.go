package realnet

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/swarmsim/swarmsim/engine/controlapi"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/engine/store"
)

func TestGRPCError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{&controlapi.Error{Code: controlapi.ErrNotFound, Msg: `service "x" not found`}, codes.NotFound},
		{&controlapi.Error{Code: controlapi.ErrInvalidArgument, Msg: "bad"}, codes.InvalidArgument},
		{&controlapi.Error{Code: controlapi.ErrConflict, Msg: "name in use", Cause: store.ErrNameConflict}, codes.AlreadyExists},
		{&controlapi.Error{Code: controlapi.ErrConflict, Msg: "out of sequence", Cause: store.ErrSequenceConflict}, codes.Aborted},
		{&controlapi.Error{Code: controlapi.ErrFailedPrecondition, Msg: "last manager"}, codes.FailedPrecondition},
		{fmt.Errorf("create service: %w", raft.ErrLeadershipLost), codes.Unavailable},
		{fmt.Errorf("remove: %w", &raft.NotLeaderError{}), codes.Unavailable},
		{ErrNotManager, codes.FailedPrecondition},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{errors.New("something else"), codes.Unknown},
	} {
		got := status.Code(GRPCError(tc.err))
		if got != tc.code {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.code)
		}
	}
	if GRPCError(nil) != nil {
		t.Error("nil error mapped to a status")
	}
	// The user's message survives.
	if msg := status.Convert(GRPCError(&controlapi.Error{Code: controlapi.ErrNotFound, Msg: `service "x" not found`})).Message(); msg != `service "x" not found` {
		t.Errorf("message %q", msg)
	}
}
