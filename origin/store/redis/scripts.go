package redis

import "github.com/redis/rueidis"

// The server-side scripts. Every key a script touches carries the same hash
// tag (the shard's), so each runs on one node of a cluster, atomically. They
// are sent by SHA (EVALSHA) and re-sent whole only when a node lacks them.

// commitScript writes one delta: version check, session, change-log entry,
// expiry index, customer index, live counter, outbox entries, and a
// notification for other origin nodes.
//
//	KEYS: 1 session, 2 feed, 3 due, 4 old customer set, 5 new customer set,
//	      6 outbox, 7 live counter, 8 notify channel, 9 pending changes
//	ARGV: 1 base version, 2 new version, 3 session CBOR, 4 delta CBOR,
//	      5 due at (0: none), 6 id, 7 feed max length, 8 expire at ms
//	      (0: none), 9 old customer, 10 new customer, 11 live delta,
//	      12 node (the notification's sender), 13 ended ("1": a
//	      tombstone), 14 change due at (0: none), 15 settle body (empty:
//	      none), 16… outbox bodies
//
// It answers the feed position of the delta, or the error "CONFLICT <v>".
var commitScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if cur == false then cur = '0' end
if cur ~= ARGV[1] then
  return redis.error_reply('CONFLICT ' .. cur)
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'b', ARGV[3])
redis.call('HDEL', KEYS[1], 'ls', 'idle')
if ARGV[13] == '1' then
  redis.call('HSET', KEYS[1], 'e', '1')
end
if ARGV[8] ~= '0' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[8])
else
  redis.call('PERSIST', KEYS[1])
end
local pos = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'd', ARGV[4])
if ARGV[5] ~= '0' then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[6])
else
  redis.call('ZREM', KEYS[3], ARGV[6])
end
if ARGV[9] ~= '' and ARGV[9] ~= ARGV[10] then
  redis.call('SREM', KEYS[4], ARGV[6])
end
if ARGV[10] ~= '' then
  redis.call('SADD', KEYS[5], ARGV[6])
end
if ARGV[11] ~= '0' then
  redis.call('INCRBY', KEYS[7], ARGV[11])
end
local added = #ARGV - 15
if ARGV[14] ~= '0' or ARGV[15] ~= '' then
  local pending = redis.call('ZSCORE', KEYS[9], ARGV[6])
  if ARGV[15] ~= '' and pending then
    redis.call('XADD', KEYS[6], '*', 'b', ARGV[15])
    redis.call('ZREM', KEYS[9], ARGV[6])
    pending = false
    added = added + 1
  end
  if ARGV[14] ~= '0' and not pending then
    redis.call('ZADD', KEYS[9], ARGV[14], ARGV[6])
  end
end
for i = 16, #ARGV do
  redis.call('XADD', KEYS[6], '*', 'b', ARGV[i])
end
redis.call('SPUBLISH', KEYS[8], ARGV[6] .. ' ' .. ARGV[2] .. ' ' .. added .. ' ' .. ARGV[12])
return pos
`)

// emitScript writes webhook events of a session that stays as it is, if
// it is still at the given version: its pending change event is settled
// (the settle body written first, when one is pending) and the other
// bodies follow. An unknown id loses its pending record.
//
//	KEYS: 1 session, 2 outbox, 3 pending changes, 4 notify channel
//	ARGV: 1 version, 2 id, 3 settle body (empty: none), 4 node,
//	      5… outbox bodies
//
// It answers how many entries it added, or the error "NOTFOUND" or
// "CONFLICT <v>".
var emitScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if cur == false then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return redis.error_reply('NOTFOUND')
end
if cur ~= ARGV[1] then
  return redis.error_reply('CONFLICT ' .. cur)
end
local added = 0
if redis.call('ZREM', KEYS[3], ARGV[2]) == 1 and ARGV[3] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'b', ARGV[3])
  added = 1
end
for i = 5, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'b', ARGV[i])
  added = added + 1
end
if added > 0 then
  redis.call('SPUBLISH', KEYS[4], ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. added .. ' ' .. ARGV[4])
end
return added
`)

// touchScript moves last-seen and the idle deadline forward without a new
// version: they live in their own fields, and readers take the later of them
// and the session's own. A tombstone (field e) is left as it is.
//
//	KEYS: 1 session, 2 due
//	ARGV: 1 last seen, 2 idle deadline, 3 due at (0: leave), 4 id
//
// It answers [session CBOR, last seen, idle deadline], or nil for an
// unknown id.
var touchScript = rueidis.NewLuaScript(`
local b = redis.call('HGET', KEYS[1], 'b')
if b == false then
  return false
end
if redis.call('HEXISTS', KEYS[1], 'e') == 1 then
  return {b, '0', '0'}
end
local ls = tonumber(redis.call('HGET', KEYS[1], 'ls') or '0')
local idle = tonumber(redis.call('HGET', KEYS[1], 'idle') or '0')
if tonumber(ARGV[1]) > ls then
  ls = tonumber(ARGV[1])
  redis.call('HSET', KEYS[1], 'ls', ARGV[1])
end
if tonumber(ARGV[2]) > idle then
  idle = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'idle', ARGV[2])
end
if ARGV[3] ~= '0' then
  redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[4])
end
return {b, tostring(ls), tostring(idle)}
`)

// purgeScript deletes a tombstone for good if it is still at the version
// the sweeper saw.
//
//	KEYS: 1 session, 2 due, 3 pending changes
//	ARGV: 1 version, 2 id
var purgeScript = rueidis.NewLuaScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if cur == false then
  redis.call('ZREM', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return 0
end
if cur ~= ARGV[1] then
  return redis.error_reply('CONFLICT ' .. cur)
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
`)
