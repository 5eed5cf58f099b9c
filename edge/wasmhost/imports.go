package wasmhost

import (
	"github.com/tetratelabs/wazero/api"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// envImports lists every host function this host implements, in module
// "env". Each is written against the raw stack: arguments arrive as uint64
// in stack; the function returns the status, which status puts in stack[0].
var envImports = []envImport{
	// Logging and time.
	{"proxy_log", 3, -1, status(proxyLog)},
	{"proxy_get_log_level", 1, -1, status(proxyGetLogLevel)},
	{"proxy_get_current_time_nanoseconds", 1, -1, status(proxyGetCurrentTimeNanoseconds)},
	{"proxy_set_tick_period_milliseconds", 1, -1, status(proxySetTickPeriod)},

	// Header maps.
	{"proxy_get_header_map_pairs", 3, -1, status(proxyGetHeaderMapPairs)},
	{"proxy_set_header_map_pairs", 3, -1, status(proxySetHeaderMapPairs)},
	{"proxy_get_header_map_value", 5, -1, status(proxyGetHeaderMapValue)},
	{"proxy_add_header_map_value", 5, -1, status(proxyAddHeaderMapValue)},
	{"proxy_replace_header_map_value", 5, -1, status(proxyReplaceHeaderMapValue)},
	{"proxy_remove_header_map_value", 3, -1, status(proxyRemoveHeaderMapValue)},
	{"proxy_get_header_map_size", 2, -1, status(proxyGetHeaderMapSize)},

	// Buffers.
	{"proxy_get_buffer_bytes", 5, -1, status(proxyGetBufferBytes)},
	{"proxy_set_buffer_bytes", 5, -1, status(proxySetBufferBytes)},
	{"proxy_get_buffer_status", 3, -1, status(proxyGetBufferStatus)},

	// Stream control.
	{"proxy_send_local_response", 8, -1, status(proxySendLocalResponse)},
	{"proxy_continue_stream", 1, -1, status(proxyContinueStream)},
	{"proxy_close_stream", 1, -1, status(proxyCloseStream)},
	{"proxy_continue_request", 0, -1, status(proxyContinueRequest)},
	{"proxy_continue_response", 0, -1, status(proxyContinueResponse)},
	{"proxy_clear_route_cache", 0, -1, status(proxyClearRouteCache)},
	{"proxy_set_effective_context", 1, -1, status(proxySetEffectiveContext)},
	{"proxy_done", 0, -1, status(proxyDone)},

	// HTTP calls.
	{"proxy_http_call", 10, -1, status(proxyHTTPCall)},
	{"proxy_dispatch_http_call", 10, -1, status(proxyHTTPCall)},
	{"proxy_get_status", 3, -1, status(proxyGetStatus)},

	// Shared data.
	{"proxy_get_shared_data", 5, -1, status(proxyGetSharedData)},
	{"proxy_set_shared_data", 5, -1, status(proxySetSharedData)},

	// Properties.
	{"proxy_get_property", 4, -1, status(proxyGetProperty)},
	{"proxy_set_property", 4, -1, status(proxySetProperty)},

	// Metrics.
	{"proxy_define_metric", 4, -1, status(proxyDefineMetric)},
	{"proxy_increment_metric", 2, 1, status(proxyIncrementMetric)},
	{"proxy_record_metric", 2, 1, status(proxyRecordMetric)},
	{"proxy_get_metric", 2, -1, status(proxyGetMetric)},

	// Not implemented: shared queues, gRPC, foreign functions.
	{"proxy_register_shared_queue", 3, -1, unimplemented},
	{"proxy_resolve_shared_queue", 5, -1, unimplemented},
	{"proxy_dequeue_shared_queue", 3, -1, unimplemented},
	{"proxy_enqueue_shared_queue", 3, -1, unimplemented},
	{"proxy_grpc_call", 12, -1, unimplemented},
	{"proxy_grpc_stream", 9, -1, unimplemented},
	{"proxy_grpc_send", 4, -1, unimplemented},
	{"proxy_grpc_cancel", 1, -1, unimplemented},
	{"proxy_grpc_close", 1, -1, unimplemented},
	{"proxy_call_foreign_function", 6, -1, unimplemented},
}

// status adapts a host function that returns its status to the raw stack:
// the status goes to stack[0].
func status(f func(v *vm, stack []uint64) proxywasm.Status) api.GoModuleFunc {
	return func(ctx ctxT, _ api.Module, stack []uint64) { stack[0] = uint64(f(vmOf(ctx), stack)) }
}

var unimplemented = api.GoModuleFunc(func(_ ctxT, _ api.Module, stack []uint64) {
	stack[0] = uint64(proxywasm.StatusUnimplemented)
})

func u32(x uint64) uint32 { return uint32(x) }
