package server

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

const (
	defaultSyncLimit = 1000
	maxSyncLimit     = 10000
	maxSyncWait      = 30 * time.Second
)

func queryUint(ctx *fasthttp.RequestCtx, name string) (uint64, bool, error) {
	v := ctx.QueryArgs().Peek(name)
	if len(v) == 0 {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, true, badInput(name, "must be a non-negative integer")
	}
	return n, true, nil
}

// handleSync answers GET /v1/sync: the deltas after the cursor in CBOR,
// long-polling up to wait ms when there are none.
func (s *Server) handleSync(ctx *fasthttp.RequestCtx, _ params) error {
	afterArg := ctx.QueryArgs().Peek("after")
	hasAfter, after := len(afterArg) > 0, store.Cursor(afterArg)
	limit, hasLimit, err := queryUint(ctx, "limit")
	if err != nil {
		return err
	}
	if !hasLimit || limit == 0 {
		limit = defaultSyncLimit
	}
	if limit > maxSyncLimit {
		limit = maxSyncLimit
	}
	waitMS, _, err := queryUint(ctx, "wait")
	if err != nil {
		return err
	}
	wait := time.Duration(waitMS) * time.Millisecond
	if wait > maxSyncWait {
		wait = maxSyncWait
	}
	var bt store.Batch
	if !hasAfter {
		if bt.Cursor, err = s.st.Head(s.base); err != nil {
			return err
		}
	} else {
		if bt, err = s.st.ChangesAfter(s.base, after, int(limit)); err != nil {
			return err
		}
		if len(bt.Deltas) == 0 && !bt.Reset && wait > 0 {
			wctx, cancel := context.WithTimeout(s.base, wait)
			werr := s.st.WaitChanges(wctx, after)
			cancel()
			if werr == nil {
				if bt, err = s.st.ChangesAfter(s.base, after, int(limit)); err != nil {
					return err
				}
			} else if !errors.Is(werr, context.DeadlineExceeded) && !errors.Is(werr, context.Canceled) {
				return werr
			}
		}
	}
	now := s.nowMS()
	for i := range bt.Deltas {
		s.metrics.syncLag.Observe(float64(now-bt.Deltas[i].At) / 1000)
	}
	out := wire.Batch{Cursor: string(bt.Cursor), Deltas: bt.Deltas, Reset: bt.Reset}
	ctx.SetContentType("application/cbor")
	ctx.SetBody(wire.AppendBatch(make([]byte, 0, 256+len(bt.Deltas)*64), &out))
	return nil
}

// handleTouch applies an edge's activity report: known sessions get their
// last-seen and idle deadline moved forward without a new version; unknown
// ids (sessions the edge minted) are created; a report of a higher
// generation of anonymous kind for a customer session is the edge's soft
// logout and becomes a logout delta.
func (s *Server) handleTouch(ctx *fasthttp.RequestCtx, _ params) error {
	ts, err := wire.DecodeTouches(ctx.PostBody(), nil)
	if err != nil {
		return err
	}
	for i := range ts {
		if err := s.touch(&ts[i]); err != nil {
			var fe *wire.FieldError
			if errors.As(err, &fe) || errors.Is(err, wire.ErrBadDelta) {
				// One bad report must not stop the others.
				s.log.Debug("touch rejected", "id", ts[i].ID.String(), "err", err)
				continue
			}
			return err
		}
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

func (s *Server) touch(t *wire.Touch) error {
	sess, err := s.st.Touch(s.base, t.ID, t.LastSeen, t.IdleDeadline)
	if errors.Is(err, store.ErrNotFound) {
		mu := s.sessionLock(t.ID)
		mu.Lock()
		defer mu.Unlock()
		d := &wire.Delta{ID: t.ID, Version: 1, At: t.LastSeen, Ops: []wire.Op{{Code: wire.OpStart, Kind: t.Kind,
			Generation: t.Generation, Idle: t.IdleDeadline, Hard: t.HardDeadline}}}
		next, err := wire.Apply(nil, d, &s.lim)
		if err != nil {
			return err
		}
		if err = s.commit(nil, next, d); errors.Is(err, store.ErrConflict) {
			return nil // created concurrently; the report is stale anyway
		}
		return err
	}
	if err != nil {
		return err
	}
	if sess.Ended == 0 && t.Generation > sess.Generation && sess.Kind == wire.KindCustomer && t.Kind == wire.KindAnonymous {
		_, _, err = s.write(change{id: t.ID, ifMatch: -1, ops: func(base *wire.Session, now int64) ([]wire.Op, error) {
			if base.Kind != wire.KindCustomer || t.Generation <= base.Generation {
				return nil, nil
			}
			return []wire.Op{{Code: wire.OpLogout, Generation: t.Generation, Idle: t.IdleDeadline, Hard: t.HardDeadline}}, nil
		}})
		if errors.Is(err, errGone) {
			return nil
		}
	}
	return err
}
