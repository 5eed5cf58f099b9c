;; conformance.wat: a small proxy-wasm filter written by hand, so the host is
;; proven against a guest that is not our Go filter. It exports malloc (as C++
;; and TinyGo guests do) instead of proxy_on_memory_allocate.
;;
;; Behaviour, by request :path:
;;   /local  -> proxy_send_local_response(403, "denied", "forbidden", x-wat: local)
;;   /call   -> proxy_http_call to cluster "backend"; on the reply, copy its
;;              x-answer header to the request as x-answer and continue, or
;;              answer 503 "origin down" when the call failed
;;   /trap   -> unreachable (the VM traps)
;;   other   -> add x-wat: 1, remove x-remove, replace x-replace with "new"
;; Every response gets x-wat-response: 1. A plugin configuration starting
;; with 'r' is rejected. Metrics: counter wat_requests, counter wat_ticks.
;;
;; probe_<host function> exports forward their arguments to the import, so
;; the conformance suite can call every host function with any argument.
;;
;; Memory layout (page 0):
;;   16..400   string constants
;;   256..272  return slots (ret ptr, ret size, call id)
;;   400..472  serialized headers of the HTTP call
;;   480..504  serialized headers of the local response
;;   512..768  call id -> stream id table (64 entries, indexed by id & 63)
;;   1024..    scratch for the test suite
;;   65536..   bump heap, reset at the start of every callback
(module
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_log_level" (func $proxy_get_log_level (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $proxy_get_current_time_nanoseconds (param i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $proxy_set_tick_period_milliseconds (param i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $proxy_get_header_map_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $proxy_set_header_map_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $proxy_get_header_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $proxy_add_header_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $proxy_replace_header_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $proxy_remove_header_map_value (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $proxy_get_header_map_size (param i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $proxy_get_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $proxy_set_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $proxy_send_local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $proxy_continue_stream (param i32) (result i32)))
  (import "env" "proxy_close_stream" (func $proxy_close_stream (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $proxy_set_effective_context (param i32) (result i32)))
  (import "env" "proxy_done" (func $proxy_done (result i32)))
  (import "env" "proxy_http_call" (func $proxy_http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_status" (func $proxy_get_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $proxy_get_shared_data (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $proxy_set_shared_data (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $proxy_get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $proxy_set_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $proxy_define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $proxy_increment_metric (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $proxy_record_metric (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric" (func $proxy_get_metric (param i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $proxy_register_shared_queue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $proxy_call_foreign_function (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_future_function" (func $proxy_future_function (param i32) (result i32)))

  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $requests (mut i32) (i32.const 0))
  (global $ticks (mut i32) (i32.const 0))

  (data (i32.const 16) ":path")
  (data (i32.const 32) "/local")
  (data (i32.const 48) "/call")
  (data (i32.const 64) "/trap")
  (data (i32.const 80) "x-wat")
  (data (i32.const 96) "1")
  (data (i32.const 112) "x-remove")
  (data (i32.const 128) "x-replace")
  (data (i32.const 144) "new")
  (data (i32.const 160) "denied")
  (data (i32.const 176) "forbidden")
  (data (i32.const 192) "backend")
  (data (i32.const 208) "x-answer")
  (data (i32.const 224) "call_failed")
  (data (i32.const 240) "origin down")
  (data (i32.const 288) "wat_requests")
  (data (i32.const 304) "wat_ticks")
  (data (i32.const 320) "x-wat-response")
  ;; 3 pairs: :method GET, :path /lookup, :authority origin
  (data (i32.const 400)
    "\03\00\00\00"
    "\07\00\00\00\03\00\00\00" "\05\00\00\00\07\00\00\00" "\0a\00\00\00\06\00\00\00"
    ":method\00GET\00:path\00/lookup\00:authority\00origin\00")
  ;; 1 pair: x-wat local
  (data (i32.const 480) "\01\00\00\00" "\05\00\00\00\05\00\00\00" "x-wat\00local\00")

  (func (export "proxy_abi_version_0_2_1"))

  ;; malloc is a bump allocator that grows memory on demand.
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535)) (i32.const 16)))
              (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func $reset_heap (export "probe_reset_heap") (global.set $heap (i32.const 65536)))

  ;; eq compares len bytes at a with len bytes at b.
  (func $eq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32))

  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32)
    (i32.const 1))

  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (call $reset_heap)
    (drop (call $proxy_define_metric (i32.const 0) (i32.const 288) (i32.const 12) (i32.const 268)))
    (global.set $requests (i32.load (i32.const 268)))
    (drop (call $proxy_define_metric (i32.const 0) (i32.const 304) (i32.const 9) (i32.const 268)))
    (global.set $ticks (i32.load (i32.const 268)))
    (if (i32.gt_u (local.get $size) (i32.const 0))
      (then
        (if (i32.eqz (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size) (i32.const 256) (i32.const 260)))
          (then
            (if (i32.eq (i32.load8_u (i32.load (i32.const 256))) (i32.const 114)) ;; 'r'
              (then (return (i32.const 0))))))))
    (i32.const 1))

  (func (export "proxy_on_tick") (param $root i32)
    (drop (call $proxy_increment_metric (global.get $ticks) (i64.const 1))))

  (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $eos i32) (result i32)
    (local $path i32) (local $len i32)
    (call $reset_heap)
    (drop (call $proxy_increment_metric (global.get $requests) (i64.const 1)))
    (if (call $proxy_get_header_map_value (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 256) (i32.const 260))
      (then (return (i32.const 0))))
    (local.set $path (i32.load (i32.const 256)))
    (local.set $len (i32.load (i32.const 260)))
    (if (call $eq (local.get $path) (local.get $len) (i32.const 32) (i32.const 6))
      (then
        (drop (call $proxy_send_local_response (i32.const 403) (i32.const 160) (i32.const 6)
          (i32.const 176) (i32.const 9) (i32.const 480) (i32.const 24) (i32.const -1)))
        (return (i32.const 1))))
    (if (call $eq (local.get $path) (local.get $len) (i32.const 48) (i32.const 5))
      (then
        (if (call $proxy_http_call (i32.const 192) (i32.const 7) (i32.const 400) (i32.const 72)
              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 3000) (i32.const 264))
          (then
            (drop (call $proxy_send_local_response (i32.const 500) (i32.const 224) (i32.const 11)
              (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))
            (return (i32.const 1))))
        (i32.store
          (i32.add (i32.const 512) (i32.shl (i32.and (i32.load (i32.const 264)) (i32.const 63)) (i32.const 2)))
          (local.get $id))
        (return (i32.const 1))))
    (if (call $eq (local.get $path) (local.get $len) (i32.const 64) (i32.const 5))
      (then unreachable))
    (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const 80) (i32.const 5) (i32.const 96) (i32.const 1)))
    (drop (call $proxy_remove_header_map_value (i32.const 0) (i32.const 112) (i32.const 8)))
    (drop (call $proxy_replace_header_map_value (i32.const 0) (i32.const 128) (i32.const 9) (i32.const 144) (i32.const 3)))
    (i32.const 0))

  (func (export "proxy_on_http_call_response") (param $root i32) (param $call i32) (param $nh i32) (param $bs i32) (param $nt i32)
    (local $slot i32)
    (call $reset_heap)
    (local.set $slot (i32.add (i32.const 512) (i32.shl (i32.and (local.get $call) (i32.const 63)) (i32.const 2))))
    ;; The stream may be gone: then there is nothing to resume.
    (if (call $proxy_set_effective_context (i32.load (local.get $slot)))
      (then (return)))
    (i32.store (local.get $slot) (i32.const 0))
    (if (i32.eqz (local.get $nh))
      (then
        (drop (call $proxy_send_local_response (i32.const 503) (i32.const 224) (i32.const 11)
          (i32.const 240) (i32.const 11) (i32.const 0) (i32.const 0) (i32.const -1)))
        (return)))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 6) (i32.const 208) (i32.const 8) (i32.const 256) (i32.const 260)))
      (then
        (drop (call $proxy_add_header_map_value (i32.const 0) (i32.const 208) (i32.const 8)
          (i32.load (i32.const 256)) (i32.load (i32.const 260))))))
    (drop (call $proxy_continue_stream (i32.const 0))))

  (func (export "proxy_on_response_headers") (param $id i32) (param $n i32) (param $eos i32) (result i32)
    (call $reset_heap)
    (drop (call $proxy_add_header_map_value (i32.const 2) (i32.const 320) (i32.const 14) (i32.const 96) (i32.const 1)))
    (i32.const 0))

  (func (export "proxy_on_done") (param $id i32) (result i32) (i32.const 1))
  (func (export "proxy_on_log") (param $id i32))
  (func (export "proxy_on_delete") (param $id i32))

  ;; Probes for the conformance suite.
  (func (export "probe_proxy_log") (param i32 i32 i32) (result i32)
    (call $proxy_log (local.get 0) (local.get 1) (local.get 2)))
  (func (export "probe_proxy_get_log_level") (param i32) (result i32)
    (call $proxy_get_log_level (local.get 0)))
  (func (export "probe_proxy_get_current_time_nanoseconds") (param i32) (result i32)
    (call $proxy_get_current_time_nanoseconds (local.get 0)))
  (func (export "probe_proxy_set_tick_period_milliseconds") (param i32) (result i32)
    (call $proxy_set_tick_period_milliseconds (local.get 0)))
  (func (export "probe_proxy_get_header_map_pairs") (param i32 i32 i32) (result i32)
    (call $proxy_get_header_map_pairs (local.get 0) (local.get 1) (local.get 2)))
  (func (export "probe_proxy_set_header_map_pairs") (param i32 i32 i32) (result i32)
    (call $proxy_set_header_map_pairs (local.get 0) (local.get 1) (local.get 2)))
  (func (export "probe_proxy_get_header_map_value") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_get_header_map_value (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_add_header_map_value") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_add_header_map_value (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_replace_header_map_value") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_replace_header_map_value (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_remove_header_map_value") (param i32 i32 i32) (result i32)
    (call $proxy_remove_header_map_value (local.get 0) (local.get 1) (local.get 2)))
  (func (export "probe_proxy_get_header_map_size") (param i32 i32) (result i32)
    (call $proxy_get_header_map_size (local.get 0) (local.get 1)))
  (func (export "probe_proxy_get_buffer_bytes") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_get_buffer_bytes (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_set_buffer_bytes") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_set_buffer_bytes (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_send_local_response") (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (call $proxy_send_local_response (local.get 0) (local.get 1) (local.get 2) (local.get 3)
      (local.get 4) (local.get 5) (local.get 6) (local.get 7)))
  (func (export "probe_proxy_continue_stream") (param i32) (result i32)
    (call $proxy_continue_stream (local.get 0)))
  (func (export "probe_proxy_close_stream") (param i32) (result i32)
    (call $proxy_close_stream (local.get 0)))
  (func (export "probe_proxy_set_effective_context") (param i32) (result i32)
    (call $proxy_set_effective_context (local.get 0)))
  (func (export "probe_proxy_done") (result i32)
    (call $proxy_done))
  (func (export "probe_proxy_http_call") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (call $proxy_http_call (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
      (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9)))
  (func (export "probe_proxy_get_status") (param i32 i32 i32) (result i32)
    (call $proxy_get_status (local.get 0) (local.get 1) (local.get 2)))
  (func (export "probe_proxy_get_shared_data") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_get_shared_data (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_set_shared_data") (param i32 i32 i32 i32 i32) (result i32)
    (call $proxy_set_shared_data (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "probe_proxy_get_property") (param i32 i32 i32 i32) (result i32)
    (call $proxy_get_property (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "probe_proxy_set_property") (param i32 i32 i32 i32) (result i32)
    (call $proxy_set_property (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "probe_proxy_define_metric") (param i32 i32 i32 i32) (result i32)
    (call $proxy_define_metric (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "probe_proxy_increment_metric") (param i32 i64) (result i32)
    (call $proxy_increment_metric (local.get 0) (local.get 1)))
  (func (export "probe_proxy_record_metric") (param i32 i64) (result i32)
    (call $proxy_record_metric (local.get 0) (local.get 1)))
  (func (export "probe_proxy_get_metric") (param i32 i32) (result i32)
    (call $proxy_get_metric (local.get 0) (local.get 1)))
  (func (export "probe_proxy_register_shared_queue") (param i32 i32 i32) (result i32)
    (call $proxy_register_shared_queue (local.get 0) (local.get 1) (local.get 2)))
  (func (export "probe_proxy_call_foreign_function") (param i32 i32 i32 i32 i32 i32) (result i32)
    (call $proxy_call_foreign_function (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4) (local.get 5)))
  (func (export "probe_proxy_future_function") (param i32) (result i32)
    (call $proxy_future_function (local.get 0)))
)
