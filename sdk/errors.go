package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNoSource: the method needs a running source and the connection string is empty.
	ErrNoSource = errors.New("no clone source: this method needs a running member to copy from")
	// ErrNotSupported: the plugin does not implement the call (for example Bootstrap on a clone-only plugin).
	ErrNotSupported = errors.New("not supported by this plugin")
	// ErrInvalidOptions: the options given to a call are not acceptable.
	ErrInvalidOptions = errors.New("invalid method options")
	// ErrPluginShutdown: the plugin process went away during a call.
	ErrPluginShutdown = errors.New("plugin process exited")
	// ErrMethodFailed: the method ran and failed (for example its command exited non-zero).
	ErrMethodFailed = errors.New("method failed")
)

// ExitError is a child process that did not succeed. Tail holds its last output lines, secrets masked.
type ExitError struct {
	Argv0    string
	Code     int    // exit code; -1 when killed by a signal
	Signal   string // the signal that ended it, if any
	Tail     []string
	Canceled bool // the process was killed because the call was cancelled or timed out
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ", e.Argv0)
	switch {
	case e.Canceled:
		b.WriteString("was stopped (cancelled or timed out)")
	case e.Signal != "":
		fmt.Fprintf(&b, "was killed by signal %s", e.Signal)
	default:
		fmt.Fprintf(&b, "exited with code %d", e.Code)
	}
	if n := len(e.Tail); n > 0 {
		fmt.Fprintf(&b, "; last output: %s", e.Tail[n-1])
	}
	return b.String()
}

// Is makes every ExitError an [ErrMethodFailed].
func (e *ExitError) Is(target error) bool { return target == ErrMethodFailed }

// OptionsError lists invalid options found at run time (Validate should have caught them earlier).
type OptionsError struct {
	Diagnostics []Diagnostic
}

func (e *OptionsError) Error() string {
	parts := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		s := d.Summary
		if d.Option != "" {
			s = d.Option + ": " + s
		}
		if d.Detail != "" {
			s += " (" + d.Detail + ")"
		}
		parts = append(parts, s)
	}
	return "invalid method options: " + strings.Join(parts, "; ")
}

// Is makes every OptionsError an [ErrInvalidOptions].
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

// CheckDiagnostics turns error diagnostics into an *OptionsError, or nil when there are none.
func CheckDiagnostics(diags []Diagnostic) error {
	var errs []Diagnostic
	for _, d := range diags {
		if d.Severity == SeverityError {
			errs = append(errs, d)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &OptionsError{Diagnostics: errs}
}

// Failed marks err as a failure of the method ([ErrMethodFailed]) unless it already says what
// kind of failure it is (no source, invalid options, a method failure, a cancelled or timed-out
// call), so that pgimaged moves on to the next method. nil stays nil.
func Failed(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrMethodFailed), errors.Is(err, ErrInvalidOptions), errors.Is(err, ErrNoSource),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return failure{err}
}

// failure is a method failure that carries no sentinel of its own.
type failure struct{ err error }

func (e failure) Error() string        { return e.err.Error() }
func (e failure) Unwrap() error        { return e.err }
func (e failure) Is(target error) bool { return target == ErrMethodFailed }
