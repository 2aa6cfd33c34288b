package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// takeSource (takeScript) is redis_rate's allowN GCRA (rwz/redis-gcra) over every window of a Key at once,
// with the hold-off key and reservation of a future slot, for one or more Takes of that Key in
// a row (Takes that arrived together: see batcher).
//
// KEYS: the TAT key of each window, then the hold-off key.
// ARGV: slack (ms added to key TTLs), then per window its interval and burst offset (µs), then
// per Take its now (Unix µs; 0 = Redis TIME) and budget (µs: the latest slot the caller will
// wait for). Returns, per Take, {allowed, wait, tightest (1-based), remaining, reset}; see result.
//
// A window admits at t when max(tat, t) + interval - offset <= t (redis_rate: remaining >= 0).
// The slot is the first t >= now every window and the hold-off admit; it is taken only if it
// is within budget, and then every window is charged as of the slot. Refused, nothing is
// charged: no window pays for a request another refused. The Takes are decided one after the
// other, exactly as separate calls would be; the keys are read once and each window's final
// TAT written once (with the TTL the last admitted Take gives it).
const takeSource = `
if redis.replicate_commands then redis.replicate_commands() end
local n = #KEYS - 1
local slack = tonumber(ARGV[1])
local vals = redis.call('MGET', unpack(KEYS))
local hold = tonumber(vals[n + 1] or 0)
local iv, off, tat = {}, {}, {}
for i = 1, n do
  iv[i] = tonumber(ARGV[2 * i])
  off[i] = tonumber(ARGV[2 * i + 1])
  tat[i] = tonumber(vals[i] or 0)
end

local base = 2 * n + 1
local clock
local out = {}
local wrote, wrote_now = false, 0
local tats = {}
for j = 1, (#ARGV - base) / 2 do
  local now = tonumber(ARGV[base + 2 * j - 1])
  local budget = tonumber(ARGV[base + 2 * j])
  if now == 0 then
    if not clock then
      local t = redis.call('TIME')
      clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
    end
    now = clock
  end
  local at = now
  if hold > at then at = hold end
  local block, block_at = 1, -1
  for i = 1, n do
    local t = tat[i]
    if t < now then t = now end
    tats[i] = t
    local allow_at = t + iv[i] - off[i]
    if allow_at > block_at then block, block_at = i, allow_at end
    if allow_at > at then at = allow_at end
  end
  local wait = at - now
  local o = #out
  if wait > budget then
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = 0, wait, block, 0, tats[block] - now
  else
    local best, best_rem, best_reset = 1, -1, 0
    for i = 1, n do
      local t = tats[i]
      if t < at then t = at end
      t = t + iv[i]
      tat[i] = t
      local rem = math.floor((at + off[i] - t) / iv[i])
      local reset = t - at
      if best_rem < 0 or rem < best_rem or (rem == best_rem and reset > best_reset) then
        best, best_rem, best_reset = i, rem, reset
      end
    end
    wrote, wrote_now = true, now
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5] = 1, wait, best, best_rem, best_reset
  end
end
if wrote then
  for i = 1, n do
    local ttl = math.ceil((tat[i] - wrote_now) / 1000) + slack
    redis.call('SET', KEYS[i], string.format('%d', tat[i]), 'PX', string.format('%d', ttl))
  end
end
return out
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

// takeArgs is where slack goes in a Key's prebuilt EVALSHA command: after "evalsha", the
// digest, the key count and the keys.
func takeArgs(k *Key) int { return 3 + len(k.keys) }

// evalCmd prebuilds a Key's EVALSHA command: slack is left zero for takeCmd to fill in, the
// windows' arguments are the Policy's; each Take's now and budget are appended.
func evalCmd(keys []string, static []any) []any {
	cmd := make([]any, 0, 3+len(keys)+1+len(static)+2)
	cmd = append(cmd, "evalsha", takeScript.Hash(), len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, 0)
	return append(cmd, static...)
}

// take is one Take's part of a script call.
type take struct{ now, budget int64 }

// takeCmd builds the EVALSHA command of takes of k (in that order) from the Key's prebuilt
// command, so that no key is formatted per request.
func takeCmd(ctx context.Context, k *Key, slack int64, takes ...take) *redis.IntSliceCmd {
	args := make([]any, len(k.cmd), len(k.cmd)+2*len(takes))
	copy(args, k.cmd)
	args[takeArgs(k)] = slack
	for _, t := range takes {
		args = append(args, t.now, t.budget)
	}
	cmd := redis.NewIntSliceCmd(ctx, args...) // the reply is integers: read without boxing them
	cmd.SetFirstKeyPos(3)
	return cmd
}

// isNoScript reports whether cmd failed because Redis lost the script.
func isNoScript(cmd redis.Cmder) bool {
	err := cmd.Err()
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// evalOf is cmd (an EVALSHA of takeScript) as EVAL, for a Redis that lost the script, as
// Script.Run does.
func evalOf(ctx context.Context, cmd *redis.IntSliceCmd) *redis.IntSliceCmd {
	args := cmd.Args()
	args[0], args[1] = "eval", takeSource
	e := redis.NewIntSliceCmd(ctx, args...)
	e.SetFirstKeyPos(3)
	return e
}

// processTake sends cmd, then as EVAL if Redis lost the script, and returns the one that ran.
func processTake(ctx context.Context, c redis.UniversalClient, cmd *redis.IntSliceCmd) *redis.IntSliceCmd {
	c.Process(ctx, cmd)
	if isNoScript(cmd) {
		cmd = evalOf(ctx, cmd)
		c.Process(ctx, cmd)
	}
	return cmd
}

// redisTake runs takeScript for one Take: one round trip for every window and the hold-off.
func redisTake(ctx context.Context, c redis.UniversalClient, p *Policy, k *Key, now, budget, slack int64) (result, error) {
	var r [1]result
	err := takeResults(p, processTake(ctx, c, takeCmd(ctx, k, slack, take{now, budget})), r[:])
	return r[0], err
}

// takeResults decodes takeScript's reply into out, one result per Take.
func takeResults(p *Policy, cmd *redis.IntSliceCmd, out []result) error {
	reply, err := cmd.Result()
	if err != nil {
		return err
	}
	if len(reply) != 5*len(out) {
		return fmt.Errorf("%w: %d values for %d Takes", errReply, len(reply), len(out))
	}
	for j := range out {
		v := reply[5*j : 5*j+5]
		if v[2] < 1 || int(v[2]) > len(p.windows) {
			return fmt.Errorf("%w: window %d of %d", errReply, v[2], len(p.windows))
		}
		out[j] = result{allowed: v[0] == 1, wait: v[1], tightest: int(v[2]) - 1, remaining: v[3], reset: v[4]}
	}
	return nil
}

func redisHoldOff(ctx context.Context, c redis.UniversalClient, k *Key, now, ttl, slack int64) error {
	return holdScript.Run(ctx, c, k.holdKey, strconv.FormatInt(now, 10), strconv.FormatInt(ttl, 10), slack).Err()
}
