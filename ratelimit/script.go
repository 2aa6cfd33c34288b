package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// takeSource (takeScript) is redis_rate's allowN GCRA (rwz/redis-gcra) over every window of a Key at once,
// with the hold-off key and reservation of a future slot.
//
// KEYS: the TAT key of each window, then the hold-off key.
// ARGV: now (Unix µs; 0 = Redis TIME), budget (µs: the latest slot the caller will wait for),
// slack (ms added to key TTLs), then per window its interval and burst offset (µs).
// Returns {allowed, wait, tightest (1-based), remaining, reset}; see result.
//
// A window admits at t when max(tat, t) + interval - offset <= t (redis_rate: remaining >= 0).
// The slot is the first t >= now every window and the hold-off admit; it is taken only if it
// is within budget, and then every window is charged as of the slot. Refused, nothing is
// written: no window pays for a request another refused.
const takeSource = `
if redis.replicate_commands then redis.replicate_commands() end
local n = #KEYS - 1
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local budget = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])

local at = now
local hold = tonumber(redis.call('GET', KEYS[n + 1]) or 0)
if hold > at then at = hold end
local tats = {}
local block, block_at = 1, -1
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local offset = tonumber(ARGV[3 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat < now then tat = now end
  tats[i] = tat
  local allow_at = tat + interval - offset
  if allow_at > block_at then block, block_at = i, allow_at end
  if allow_at > at then at = allow_at end
end

local wait = at - now
if wait > budget then
  return {0, wait, block, 0, tats[block] - now}
end

local best, best_rem, best_reset = 1, -1, 0
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local offset = tonumber(ARGV[3 + 2 * i])
  local tat = tats[i]
  if tat < at then tat = at end
  tat = tat + interval
  local ttl = math.ceil((tat - now) / 1000) + slack
  redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', string.format('%d', ttl))
  local rem = math.floor((at + offset - tat) / interval)
  local reset = tat - at
  if best_rem < 0 or rem < best_rem or (rem == best_rem and reset > best_reset) then
    best, best_rem, best_reset = i, rem, reset
  end
end
return {1, wait, best, best_rem, best_reset}
`

var takeScript = redis.NewScript(takeSource)

// holdScript shuts a Key until now+ttl unless it is already shut longer.
// KEYS: the hold-off key. ARGV: now (Unix µs; 0 = Redis TIME), ttl (µs), slack (ms).
var holdScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local ttl = tonumber(ARGV[2])
local ends = now + ttl
if ends > tonumber(redis.call('GET', KEYS[1]) or 0) then
  local px = math.ceil(ttl / 1000) + tonumber(ARGV[3])
  redis.call('SET', KEYS[1], string.format('%d', ends), 'PX', string.format('%d', px))
end
return 0
`)

var errReply = errors.New("ratelimit: unexpected reply from the Redis script")

// takeArgs is where the per-request arguments start in a Key's prebuilt EVALSHA command:
// after "evalsha", the digest, the key count and the keys.
func takeArgs(k *Key) int { return 3 + len(k.keys) }

// evalCmd prebuilds a Key's EVALSHA command: the per-request arguments (now, budget, slack)
// are left zero for redisTake to fill in, the windows' arguments are the Policy's.
func evalCmd(keys []string, static []any) []any {
	cmd := make([]any, 0, 3+len(keys)+3+len(static))
	cmd = append(cmd, "evalsha", takeScript.Hash(), len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, 0, 0, 0)
	return append(cmd, static...)
}

// redisTake runs takeScript: one round trip for every window and the hold-off. It sends the
// Key's prebuilt command (as Script.Run would, EVAL when Redis lost the script) so that no
// key is formatted or boxed per request.
func redisTake(ctx context.Context, c redis.UniversalClient, p *Policy, k *Key, now, budget, slack int64) (result, error) {
	args := make([]any, len(k.cmd))
	copy(args, k.cmd)
	i := takeArgs(k)
	args[i], args[i+1], args[i+2] = now, budget, slack
	cmd := redis.NewCmd(ctx, args...)
	cmd.SetFirstKeyPos(3)
	err := c.Process(ctx, cmd)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		args[0], args[1] = "eval", takeSource
		cmd = redis.NewCmd(ctx, args...)
		cmd.SetFirstKeyPos(3)
		err = c.Process(ctx, cmd)
	}
	if err != nil {
		return result{}, err
	}
	reply, err := cmd.Slice()
	if err != nil {
		return result{}, err
	}
	var v [5]int64
	ok := len(reply) == len(v)
	for i := 0; ok && i < len(v); i++ {
		v[i], ok = reply[i].(int64)
	}
	if !ok || v[2] < 1 || int(v[2]) > len(p.windows) {
		return result{}, fmt.Errorf("%w: %v", errReply, reply)
	}
	return result{allowed: v[0] == 1, wait: v[1], tightest: int(v[2]) - 1, remaining: v[3], reset: v[4]}, nil
}

func redisHoldOff(ctx context.Context, c redis.UniversalClient, k *Key, now, ttl, slack int64) error {
	return holdScript.Run(ctx, c, k.holdKey, strconv.FormatInt(now, 10), strconv.FormatInt(ttl, 10), slack).Err()
}
