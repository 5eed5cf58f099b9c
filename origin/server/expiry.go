package server

import (
	"errors"
	"time"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

const sweepBatch = 512

func (s *Server) sweepLoop() {
	defer s.bg.Done()
	interval := s.cfg.SweepInterval.Or(Duration(time.Second)).Std()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.base.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(); err != nil && s.base.Err() == nil {
				s.log.Error("expiry sweep failed", "err", err)
			}
		}
	}
}

// Sweep applies every expiry action due now, then sends the
// session.changed events whose window ended, and returns how many of both
// it applied. Its cost follows what is due: it reads the expiry index and
// the pending change events from their start up to now.
func (s *Server) Sweep() (int, error) {
	n, err := s.sweepExpiry()
	if err != nil {
		return n, err
	}
	m, err := s.settleChanges(s.nowMS())
	return n + m, err
}

func (s *Server) sweepExpiry() (int, error) {
	done := 0
	for {
		now := s.nowMS()
		due, err := s.st.Expiring(s.base, now+1, sweepBatch)
		if err != nil {
			return done, err
		}
		progress := 0
		for _, d := range due {
			acted, err := s.expire(d.ID, now)
			if err != nil {
				return done, err
			}
			if acted {
				progress++
			}
		}
		done += progress
		if len(due) < sweepBatch || progress == 0 {
			return done, nil
		}
	}
}

// expire applies the action due for one session at now: purge a tombstone,
// end at the hard deadline, or the kind's idle action (anonymous: end;
// customer: soft logout; shared: none).
func (s *Server) expire(id wire.ID, now int64) (bool, error) {
	sess, err := s.st.Get(s.base, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if sess.Ended != 0 {
		err := s.st.Purge(s.base, id, sess.Version)
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	acted := false
	_, _, err = s.write(change{id: id, ifMatch: -1, ops: func(base *wire.Session, _ int64) ([]wire.Op, error) {
		switch {
		case base.HardDeadline != 0 && now >= base.HardDeadline:
			acted = true
			return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndHardExpired}}, nil
		case base.Kind == wire.KindShared || base.IdleDeadline == 0 || now < base.IdleDeadline:
			return nil, nil
		case base.Kind == wire.KindCustomer:
			acted = true
			return s.logoutOps(base, base.LastSeen), nil
		default:
			acted = true
			return []wire.Op{{Code: wire.OpEnd, Reason: wire.EndIdleExpired}}, nil
		}
	}})
	if errors.Is(err, errGone) || errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return acted, err
}
