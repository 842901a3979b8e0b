package controlapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/store"
)

// Sentinels every refusal wraps; they map one to one onto gRPC codes of
// the same names.
var (
	ErrNotFound           = errors.New("not found")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrConflict           = errors.New("conflict")
	ErrFailedPrecondition = errors.New("failed precondition")
)

// Error is a refusal: a message for users, the sentinel saying which kind
// (Code), and the cause when there is one (a store sentinel, validation
// errors). errors.Is matches both the code and the cause.
type Error struct {
	Code  error
	Msg   string
	Cause error
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Code}
	}
	return []error{e.Code, e.Cause}
}

func errorf(code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

func notFound(kind, ref string) *Error {
	return errorf(ErrNotFound, nil, "%s %q not found", kind, ref)
}

// invalidSpec reports validation failures on one line, field by field.
func invalidSpec(kind string, err error) *Error {
	fields := api.FieldErrors(err)
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		parts = append(parts, f.Error())
	}
	if len(parts) == 0 {
		parts = append(parts, err.Error())
	}
	return errorf(ErrInvalidArgument, err, "invalid %s spec: %s", kind, strings.Join(parts, "; "))
}

// outOfSequence is the refusal of an update based on a stale version.
func outOfSequence(kind, name string, have, based uint64) *Error {
	return errorf(ErrConflict, store.ErrSequenceConflict,
		"update out of sequence: %s %s is at version %d, request was based on %d", kind, name, have, based)
}

// storeError turns the error a write failed with into one for users. A
// refusal of ours passes through; a proposal the store rejected on apply
// (another write got there first) becomes a conflict; anything else (the
// proposer's: leadership lost, proposal dropped) keeps its identity, with
// context, since the write may or may not have happened.
func storeError(what string, err error) error {
	var e *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return err
	case errors.Is(err, store.ErrSequenceConflict):
		return errorf(ErrConflict, err, "%s: update out of sequence: it changed while the request was in flight; read it again", what)
	case errors.Is(err, store.ErrNameConflict):
		return errorf(ErrConflict, err, "%s: name already in use", what)
	case errors.Is(err, store.ErrExist):
		return errorf(ErrConflict, err, "%s: already exists", what)
	case errors.Is(err, store.ErrNotExist):
		return errorf(ErrNotFound, err, "%s: no longer exists", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}
