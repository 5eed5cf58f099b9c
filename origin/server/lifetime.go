package server

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// lifetime is the idle and hard timeout a session asks for as its own; a
// zero part means its kind's.
type lifetime struct{ idle, hard Duration }

// minLifetime is the shortest timeout a session may ask for: tokens count
// in seconds.
const minLifetime = Duration(time.Second)

// checkTimeout validates one part of a lifetime for kind: at least a
// second and at most the kind's maximum; "none" only where it is the kind's
// own timeout (the session model keeps 0 for "the kind's", and has no other
// way to say "none"). field names the value in errors.
func (s *Server) checkTimeout(field string, d Duration, kind wire.Kind, hard bool) (Duration, error) {
	t := s.tm[kind]
	def, max := t.Idle, t.MaxIdle
	if hard {
		def, max = t.Hard, t.MaxHard
	}
	switch {
	case d == 0:
		return 0, nil
	case d.IsNone() && def.IsNone():
		return 0, nil // the kind's own
	case d.IsNone():
		return 0, badInput(field, "\"none\" is allowed only where the kind's timeout is none ("+kind.String()+": "+def.String()+")")
	case d < minLifetime:
		return 0, badInput(field, "must be at least 1s")
	case !max.IsNone() && d > max:
		return 0, badInput(field, "longer than the maximum for "+kind.String()+" sessions ("+max.String()+")")
	}
	return d, nil
}

// parseLifetime reads the member "lifetime" of a body:
// {"idle": "5m", "hard": "168h"}, both optional, for a session of kind.
func (s *Server) parseLifetime(obj wire.Value, kind wire.Kind) (lifetime, error) {
	var lt lifetime
	v, ok := obj.Map.Get("lifetime")
	if !ok || v.IsZero() {
		return lt, nil
	}
	if v.Type != wire.TypeMap {
		return lt, badInput("lifetime", "must be an object")
	}
	for _, m := range v.Map {
		field := "lifetime." + m.Key
		if m.Key != "idle" && m.Key != "hard" {
			return lt, badInput(field, "unknown member (idle, hard)")
		}
		if m.Value.IsZero() {
			continue
		}
		d, err := wire.DurationFromValue(m.Value)
		if err != nil {
			return lt, badInput(field, "must be a duration (\"5m\", \"168h\", a number of seconds)")
		}
		hard := m.Key == "hard"
		if d, err = s.checkTimeout(field, d, kind, hard); err != nil {
			return lt, err
		}
		if hard {
			lt.hard = d
		} else {
			lt.idle = d
		}
	}
	return lt, nil
}

// lifetimeQuery reads ?idleTimeout= and ?hardTimeout= of an upsert, for
// an anonymous session it may create.
func (s *Server) lifetimeQuery(ctx *fasthttp.RequestCtx) (lifetime, error) {
	var lt lifetime
	for _, q := range []struct {
		name string
		hard bool
		dst  *Duration
	}{{"idleTimeout", false, &lt.idle}, {"hardTimeout", true, &lt.hard}} {
		v := ctx.QueryArgs().Peek(q.name)
		if len(v) == 0 {
			continue
		}
		d, err := wire.ParseDuration(string(v))
		if err != nil {
			return lt, badInput(q.name, "must be a duration (\"5m\", \"168h\")")
		}
		if *q.dst, err = s.checkTimeout(q.name, d, wire.KindAnonymous, q.hard); err != nil {
			return lt, err
		}
	}
	return lt, nil
}

// ms returns d in milliseconds (0 for the kind's).
func ms(d Duration) int64 { return d.Std().Milliseconds() }

// lifetimeOp records lt as the session's own lifetime.
func lifetimeOp(lt lifetime) wire.Op {
	return wire.Op{Code: wire.OpLifetime, Idle: ms(lt.idle), Hard: ms(lt.hard)}
}

// relife returns the op that gives base the lifetime lt, or none when it
// has it already.
func relife(base *wire.Session, lt lifetime) []wire.Op {
	if base.IdleTimeout == ms(lt.idle) && base.HardTimeout == ms(lt.hard) {
		return nil
	}
	return []wire.Op{lifetimeOp(lt)}
}

// idleOf is the idle timeout that applies to sess: its own, or its kind's.
func (s *Server) idleOf(sess *wire.Session) Duration {
	if sess.IdleTimeout > 0 {
		return Duration(sess.IdleTimeout * int64(time.Millisecond))
	}
	return s.tm[sess.Kind].Idle
}

// startOp starts a session of kind at generation gen with the lifetime lt
// (its zero parts: the kind's timeouts).
func (s *Server) startOp(kind wire.Kind, gen uint32, now int64, lt lifetime) wire.Op {
	t := s.tm[kind]
	hard := deadlineAfter(lt.hard.Or(t.Hard), now)
	return wire.Op{Code: wire.OpStart, Kind: kind, Generation: gen, Idle: capIdle(deadlineAfter(lt.idle.Or(t.Idle), now), hard), Hard: hard}
}

// startOps are the ops that create a session: start, and the lifetime when
// it has one of its own.
func (s *Server) startOps(kind wire.Kind, gen uint32, now int64, lt lifetime) []wire.Op {
	ops := []wire.Op{s.startOp(kind, gen, now, lt)}
	if lt != (lifetime{}) {
		ops = append(ops, lifetimeOp(lt))
	}
	return ops
}

// loginOp logs a session in: the hard deadline becomes the earlier of the
// current one and now plus the session's hard lifetime (lt.hard, else the
// customer hard timeout), so it never grows (a customer's part of a
// session lasts at most that long, and the whole session no longer than
// its first hard deadline), and a shopper who browsed longer than the
// customer timeout before logging in still gets a live session. The idle
// deadline is now plus lt.idle, else the customer idle timeout.
func (s *Server) loginOp(cid string, gen uint32, hard, now int64, lt lifetime) wire.Op {
	t := s.tm[wire.KindCustomer]
	hard = minDeadline(hard, deadlineAfter(lt.hard.Or(t.Hard), now))
	return wire.Op{Code: wire.OpLogin, CustomerID: cid, Generation: gen, Idle: capIdle(deadlineAfter(lt.idle.Or(t.Idle), now), hard), Hard: hard}
}

// ownLifetime is the lifetime base has as its own (zero parts: its kind's).
func ownLifetime(base *wire.Session) lifetime {
	return lifetime{idle: Duration(base.IdleTimeout * int64(time.Millisecond)), hard: Duration(base.HardTimeout * int64(time.Millisecond))}
}

// logoutOps log base out at generation + 1 with the idle deadline from
// since (now, or the last activity for the sweeper's soft logout): the
// session's own idle timeout, else the anonymous one. A session keeps its
// own lifetime across logout, as across login, until a login gives it
// another.
func (s *Server) logoutOps(base *wire.Session, since int64) []wire.Op {
	idle := ownLifetime(base).idle.Or(s.tm[wire.KindAnonymous].Idle)
	return []wire.Op{{Code: wire.OpLogout, Generation: base.Generation + 1,
		Idle: capIdle(deadlineAfter(idle, since), base.HardDeadline), Hard: base.HardDeadline}}
}
