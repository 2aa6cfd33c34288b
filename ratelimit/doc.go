// Package ratelimit holds outbound calls to an API's configured rate, shared by every extapi
// instance through Redis (GCRA, as github.com/go-redis/redis_rate), or in-process without Redis.
//
// # Windows and burst
//
// Each window set in store.RateLimit (requests per second, minute, hour, day) is a GCRA limit in
// the sense of redis_rate.Limit{Rate, Burst, Period}: requests are spaced Period/Rate apart on
// average and up to Burst may go back to back. A request passes only when every window admits
// it, and a request refused by any window is charged to none.
//
// One burst value B applies: store.RateLimit.Burst if set, else requests_per_second if set,
// else 1. The per-second window gets burst B (redis_rate.PerSecond with Burst B); a minute,
// hour or day window gets min(B, its rate). So with only coarse windows and no burst set, a
// window of R per hour admits one request every hour/R and never more than R in any rolling
// hour — a provider's hard quota holds. In general a window of rate R and burst b lets at most
// R+b-1 requests through in any span of its period (the per-second window of 20/s with the
// default burst 20: at most 39 in any second). To hold a hard quota Q with a burst b > 1, set
// the window to Q-b+1.
//
// # Modes
//
// In wait mode a request reserves the first slot every window (and any hold-off) allows and
// sleeps until it, if that slot comes within its budget: the policy's max wait, cut to the
// context's deadline. A request whose slot would come later is refused at once with
// Decision.RetryAfter and charged nothing: it never sits out a wait it cannot finish. Reject
// mode is wait mode with a budget of zero. A request cancelled while it waits keeps its slot
// spent (the upstream then sees fewer requests, never more).
//
// # Redis
//
// One Take is at most one Redis round trip whatever the number of windows: a Lua script
// (takeSource) reads and updates every window's TAT and the hold-off key in one EVALSHA.
// Concurrent Takes are coalesced (batcher): while a round trip is in flight, the Takes that
// arrive queue and all go in the next one; those of the same Key share one script call, which
// decides them one after the other exactly as separate calls would, reading the keys once and
// writing each window once; those of other Keys are pipelined with it. Each caller gets its
// own Decision. A round trip is bounded by Options.Timeout from its latest caller's arrival,
// so a caller queued behind a round trip in flight waits at most about twice the timeout
// before it is decided in-process (or refused, for "deny"). All keys of a Key
// share one Redis Cluster hash tag — "extapi:rl:{<api>:<connection>}:<window>", or
// "extapi:rl:{<api>}:<window>" under scope "api" — so the script runs on Cluster too. redis_rate's own Limiter is not called: its AllowN runs one script per
// limit and cannot reserve a future slot; the script here is its GCRA (same rate, burst and
// period semantics, checked against it by a test) over several keys, plus reservation and the
// hold-off. Times are whole microseconds, so every value is an exact integer in Lua's doubles.
//
// The script reads the clock with Redis TIME, one clock for the whole fleet. When
// Options.Now is set the caller's clock is passed instead (tests); every instance sharing the
// keys must then share that clock.
//
// When a Redis call fails (error or Options.Timeout), a policy with on_redis_error "allow" (the
// default) is decided by an in-process limiter with the same windows, Decision.Fallback set;
// "deny" returns ErrUnavailable. After a failure, Redis is skipped for Options.ProbeInterval,
// then one request tries it again; the first success ends the fallback. The in-process budgets
// are each instance's own and start full, so during an outage a fleet of N instances admits up
// to N times the rate; "deny" is for APIs where that is worse than refusing. Hold-offs are kept
// in-process as well, so a fallback honours those it has seen.
//
// Options.Timeout is a context deadline: the client must be built with ContextTimeoutEnabled
// (go-redis otherwise bounds calls by its socket timeouts only); NewRedis warns when it is not.
package ratelimit
