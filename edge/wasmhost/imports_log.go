package wasmhost

import (
	"context"
	"log/slog"

	"github.com/sessionedge/sessionedge/proxywasm"
)

type ctxT = context.Context

// Proxy-wasm log levels map onto slog levels: TRACE is below slog's DEBUG,
// CRITICAL above ERROR.
var logLevels = [...]slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 4}

func proxyLevel(l slog.Level) uint32 {
	for i := len(logLevels) - 1; i >= 0; i-- {
		if l >= logLevels[i] {
			return uint32(i)
		}
	}
	return 0
}

// proxy_log(level, message_ptr, message_size)
func proxyLog(v *vm, stack []uint64) proxywasm.Status {
	level := u32(stack[0])
	if level >= uint32(len(logLevels)) {
		return proxywasm.StatusBadArgument
	}
	msg, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		return proxywasm.StatusInvalidMemoryAccess
	}
	lv := logLevels[level]
	h := v.host
	if lv >= h.cfg.LogLevel && h.logger.Enabled(context.Background(), lv) {
		id := uint32(rootContextID)
		if v.cur != nil {
			id = v.cur.id
		}
		h.logger.Log(context.Background(), lv, string(msg), "source", "guest", "vm", v.slot, "context", id)
	}
	return proxywasm.StatusOK
}

// proxy_get_log_level(return_level_ptr)
func proxyGetLogLevel(v *vm, stack []uint64) proxywasm.Status {
	if !v.writeU32(u32(stack[0]), proxyLevel(v.host.cfg.LogLevel)) {
		return proxywasm.StatusInvalidMemoryAccess
	}
	return proxywasm.StatusOK
}

// proxy_get_current_time_nanoseconds(return_time_ptr): wall clock as u64.
func proxyGetCurrentTimeNanoseconds(v *vm, stack []uint64) proxywasm.Status {
	if !v.writeU64(u32(stack[0]), uint64(v.host.clock.Now().UnixNano())) {
		return proxywasm.StatusInvalidMemoryAccess
	}
	return proxywasm.StatusOK
}

// proxy_set_tick_period_milliseconds(period): the tick belongs to the VM's
// root context whatever the effective context; 0 stops it.
func proxySetTickPeriod(v *vm, stack []uint64) proxywasm.Status {
	v.tickPeriod.Store(int64(u32(stack[0])))
	select {
	case v.tickNotify <- struct{}{}:
	default:
	}
	return proxywasm.StatusOK
}
