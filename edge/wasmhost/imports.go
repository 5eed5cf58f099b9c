package wasmhost

import (
	"github.com/tetratelabs/wazero/api"

	"github.com/sessionedge/sessionedge/proxywasm"
)

// envImports lists every host function this host implements, in module
// "env". Each is written against the raw stack (api.GoModuleFunc): arguments
// arrive as uint64 in stack, the status goes to stack[0].
var envImports = []envImport{
	// Logging and time.
	{"proxy_log", 3, -1, proxyLog},
	{"proxy_get_log_level", 1, -1, proxyGetLogLevel},
	{"proxy_get_current_time_nanoseconds", 1, -1, proxyGetCurrentTimeNanoseconds},
	{"proxy_set_tick_period_milliseconds", 1, -1, proxySetTickPeriod},

	// Header maps.
	{"proxy_get_header_map_pairs", 3, -1, proxyGetHeaderMapPairs},
	{"proxy_set_header_map_pairs", 3, -1, proxySetHeaderMapPairs},
	{"proxy_get_header_map_value", 5, -1, proxyGetHeaderMapValue},
	{"proxy_add_header_map_value", 5, -1, proxyAddHeaderMapValue},
	{"proxy_replace_header_map_value", 5, -1, proxyReplaceHeaderMapValue},
	{"proxy_remove_header_map_value", 3, -1, proxyRemoveHeaderMapValue},
	{"proxy_get_header_map_size", 2, -1, proxyGetHeaderMapSize},

	// Buffers.
	{"proxy_get_buffer_bytes", 5, -1, proxyGetBufferBytes},
	{"proxy_set_buffer_bytes", 5, -1, proxySetBufferBytes},
	{"proxy_get_buffer_status", 3, -1, proxyGetBufferStatus},

	// Stream control.
	{"proxy_send_local_response", 8, -1, proxySendLocalResponse},
	{"proxy_continue_stream", 1, -1, proxyContinueStream},
	{"proxy_close_stream", 1, -1, proxyCloseStream},
	{"proxy_continue_request", 0, -1, proxyContinueRequest},
	{"proxy_continue_response", 0, -1, proxyContinueResponse},
	{"proxy_clear_route_cache", 0, -1, proxyClearRouteCache},
	{"proxy_set_effective_context", 1, -1, proxySetEffectiveContext},
	{"proxy_done", 0, -1, proxyDone},

	// HTTP calls.
	{"proxy_http_call", 10, -1, proxyHTTPCall},
	{"proxy_dispatch_http_call", 10, -1, proxyHTTPCall},
	{"proxy_get_status", 3, -1, proxyGetStatus},

	// Shared data.
	{"proxy_get_shared_data", 5, -1, proxyGetSharedData},
	{"proxy_set_shared_data", 5, -1, proxySetSharedData},

	// Properties.
	{"proxy_get_property", 4, -1, proxyGetProperty},
	{"proxy_set_property", 4, -1, proxySetProperty},

	// Metrics.
	{"proxy_define_metric", 4, -1, proxyDefineMetric},
	{"proxy_increment_metric", 2, 1, proxyIncrementMetric},
	{"proxy_record_metric", 2, 1, proxyRecordMetric},
	{"proxy_get_metric", 2, -1, proxyGetMetric},

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

var unimplemented = api.GoModuleFunc(func(_ ctxT, _ api.Module, stack []uint64) {
	stack[0] = uint64(proxywasm.StatusUnimplemented)
})

func u32(x uint64) uint32 { return uint32(x) }
