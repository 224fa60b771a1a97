package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mailmigrate/internal/imapconn"
)

// DefaultMaxThrottleWait is Options.MaxThrottleWait when it is not set:
// Exchange Online asks for up to about five minutes.
const DefaultMaxThrottleWait = 15 * time.Minute

// maxThrottles bounds the throttled answers one run waits out: a server
// that never stops asking ends the run, and its caller decides when to
// come back.
const maxThrottles = 100

// ThrottledError ends a run whose old server asked for a longer pause than
// the run waits out itself (Options.MaxThrottleWait), or asked too often.
// Nothing failed: run it again after Until, and it continues where the
// ledger says.
type ThrottledError struct {
	Until time.Time
	Err   error // the server's answer
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("the old server asks to slow down until %s: %v", e.Until.Format(time.TimeOnly), e.Err)
}

func (e *ThrottledError) Unwrap() error { return e.Err }

// backOff takes the wait a throttled answer of the source asks for: in
// this run when it is short enough, else it returns a *ThrottledError.
func (m *migration) backOff(ctx context.Context, err error) error {
	wait, _ := imapconn.ThrottleWait(err)
	until := time.Now().Add(wait)
	m.throttles++
	if m.opt.Throttled != nil {
		m.opt.Throttled(until)
	}
	if wait > m.opt.MaxThrottleWait || m.throttles > maxThrottles {
		return &ThrottledError{Until: until, Err: err}
	}
	m.logf("the old server asks to slow down (%v); continuing at %s", err, until.Format(time.TimeOnly))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// dialSource logs in to the source, waiting out throttled logins and
// connection caps; rejected is the access token the last session ended
// for, if it did.
func (m *migration) dialSource(ctx context.Context, rejected string) (*imapconn.Conn, error) {
	for {
		c, err := m.dial(ctx, SideSource, rejected)
		if _, throttled := imapconn.ThrottleWait(err); !throttled {
			return c, err
		}
		if err := m.backOff(ctx, err); err != nil {
			return nil, err
		}
	}
}

// fromSource runs op, which reads from the source connection. When the
// source throttles it, the wait is taken (backOff), a connection the
// server closed is replaced, and op runs again; reopened tells it that the
// connection is new and its folder must be opened again. A session the
// server ended because its access token expired is replaced the same way,
// signed in with a fresh token.
func (m *migration) fromSource(ctx context.Context, op func(reopened bool) error) error {
	reopened, renewals := false, 0
	for {
		err := op(reopened)
		_, throttled := imapconn.ThrottleWait(err)
		switch {
		case throttled:
			if err := m.backOff(ctx, err); err != nil {
				return err
			}
		case errors.Is(err, imapconn.ErrTokenExpired) && renewals < maxRenewals:
			renewals++
			m.logf("the old server ended the session because the access token expired; signing in again")
		default:
			return err
		}
		if m.src.Dead() {
			if err := m.reconnectSource(ctx); err != nil {
				return err
			}
			reopened = true
		}
	}
}
