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
// long-polling up to wait ms when there are none. Ops on namespaces the key
// may not see are removed; a delta left without ops is still sent (it
// advances the session's version).
func (s *Server) handleSync(ctx *fasthttp.RequestCtx, _ params, a access) error {
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
	wait := maxSyncWait
	if waitMS < uint64(maxSyncWait/time.Millisecond) {
		wait = time.Duration(waitMS) * time.Millisecond
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
			s.metrics.syncParked.Inc()
			werr := s.st.WaitChanges(wctx, after)
			s.metrics.syncParked.Dec()
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
	deltas := bt.Deltas
	if a.edge {
		deltas = filterDeltas(deltas, a.namespaces)
	}
	out := wire.Batch{Cursor: string(bt.Cursor), Deltas: deltas, Reset: bt.Reset}
	ctx.SetContentType("application/cbor")
	ctx.SetBody(wire.AppendBatch(make([]byte, 0, 256+len(deltas)*64), &out))
	return nil
}

// filterDeltas returns the deltas for an edge key: without the ops on
// namespaces outside visible, and without device ops (device metadata is
// not the edges'). The store's deltas are shared: filtered ones are copies.
func filterDeltas(ds []wire.Delta, visible uint8) []wire.Delta {
	out := ds
	copied := false
	for i := range ds {
		hidden := 0
		for _, op := range ds[i].Ops {
			if hidesOp(op, visible) {
				hidden++
			}
		}
		if hidden == 0 {
			continue
		}
		if !copied {
			out = append([]wire.Delta(nil), ds...)
			copied = true
		}
		ops := make([]wire.Op, 0, len(ds[i].Ops)-hidden)
		for _, op := range ds[i].Ops {
			if !hidesOp(op, visible) {
				ops = append(ops, op)
			}
		}
		out[i].Ops = ops
	}
	return out
}

func hidesOp(op wire.Op, visible uint8) bool {
	switch op.Code {
	case wire.OpSetAttr, wire.OpDeleteAttr, wire.OpClearNamespace:
		return visible&(1<<op.NS) == 0
	case wire.OpDevice:
		return true
	}
	return false
}

// Reasons a touch report is ignored (the label of
// sessionedge_touches_rejected_total).
const (
	touchStaleGeneration = "stale_generation"
	touchKindMismatch    = "kind_mismatch"
	touchEnded           = "ended"
	touchInvalid         = "invalid"
)

// handleTouch applies an edge's activity report. A known session's last
// seen and idle deadline move forward when the report is of its generation
// and kind; an unknown id is created only as what an edge mints (see
// creatable). Every other report is ignored and counted: a touch never logs
// out, never changes kind or generation, never moves a hard deadline.
func (s *Server) handleTouch(ctx *fasthttp.RequestCtx, _ params, _ access) error {
	ts, err := wire.DecodeTouchesLimits(ctx.PostBody(), nil, &s.lim)
	if err != nil {
		return err
	}
	for i := range ts {
		reason, err := s.touch(&ts[i])
		if err != nil {
			var fe *wire.FieldError
			if !errors.As(err, &fe) && !errors.Is(err, wire.ErrBadDelta) {
				return err
			}
			// One bad report must not stop the others.
			reason = touchInvalid
		}
		if reason != "" {
			s.metrics.touchRejected(reason)
		}
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return nil
}

// touch applies one report and returns why it was ignored ("" when
// applied). A report that creates the session brings what the edge applied
// to it (initOps); a report whose device differs from the stored one
// records it with a delta of its own (edges do not see it: it is a version
// bump for them).
func (s *Server) touch(t *wire.Touch) (string, error) {
	now := s.nowMS()
	lastSeen := min(t.LastSeen, now)
	mu := s.sessionLock(t.ID)
	mu.Lock()
	defer mu.Unlock()
	sess, err := s.st.Get(s.base, t.ID)
	if errors.Is(err, store.ErrNotFound) {
		if reason := s.creatable(t.Kind, t.Generation, t.HardDeadline, now); reason != "" {
			return reason, nil
		}
		start := s.edgeStart(t.HardDeadline, lastSeen)
		init := initOps(t)
		var next *wire.Session
		d := &wire.Delta{ID: t.ID, Version: 1, At: lastSeen, Ops: append([]wire.Op{start}, init...)}
		if next, err = wire.Apply(nil, d, &s.lim); err != nil {
			// What the edge applied does not fit the origin's limits: the
			// session is created without it rather than not at all.
			s.log.Debug("touch: a minted session's initial ops are refused; created without them", "id", t.ID.String(), "err", err)
			d.Ops = d.Ops[:1]
			if next, err = wire.Apply(nil, d, &s.lim); err != nil {
				return "", err
			}
		}
		if err = s.commit(nil, next, d); errors.Is(err, store.ErrConflict) {
			return "", nil // created concurrently by another node; the report is stale anyway
		}
		return "", err
	}
	if err != nil {
		return "", err
	}
	switch {
	case sess.Ended != 0:
		return touchEnded, nil
	case t.Generation != sess.Generation:
		return touchStaleGeneration, nil
	case t.Kind != sess.Kind:
		return touchKindMismatch, nil
	}
	if !t.Device.IsZero() && t.Device != sess.Device {
		d := &wire.Delta{ID: t.ID, BaseVersion: sess.Version, Version: sess.Version + 1, At: now,
			Ops: []wire.Op{{Code: wire.OpDevice, Device: t.Device}}}
		next, err := wire.Apply(sess, d, &s.lim)
		if err != nil {
			return "", err
		}
		switch err := s.commit(sess, next, d); {
		case err == nil:
		case errors.Is(err, store.ErrConflict):
			// Another node wrote meanwhile: its next report brings the
			// device again.
		default:
			return "", err
		}
	}
	lastSeen = max(lastSeen, sess.LastSeen)
	idle := capIdle(deadlineAfter(s.idleOf(sess), lastSeen), sess.HardDeadline)
	if _, err := s.st.Touch(s.base, t.ID, lastSeen, idle); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	return "", nil
}
