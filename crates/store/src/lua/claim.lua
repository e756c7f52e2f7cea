-- Claim step ARGV[1], attempt ARGV[2] of a run for owner ARGV[3] with a lease of ARGV[4] ms.
-- A run whose planner reads its history (any but `script`) gets the latest ARGV[5] records of
-- its step list too (never the whole list: a claim costs the same at step 10 and 10,000).
-- KEYS[1] run hash, KEYS[2] lease, KEYS[3] fence counter, KEYS[4] spec, KEYS[5] step list,
-- KEYS[6] event stream.
-- Returns {'ok', fence, head, stop, spec, history, unpublished} or {reason}: missing, terminal,
-- waiting, stale, ahead, leased. stop is the pending stop request (cancel, deadline) or false;
-- unpublished are the newest stream entries not yet confirmed on Kafka (newest first), which
-- the claimer publishes before its own.
local h = redis.call('HMGET', KEYS[1], 'status', 'step', 'attempt', 'planner', 'seq', 'pub')
if not h[1] then return {'missing'} end
if TERMINAL[h[1]] then return {'terminal'} end
if h[1] == 'waiting' then return {'waiting'} end
local step, attempt = tonumber(h[2]), tonumber(h[3])
local want_step, want_attempt = tonumber(ARGV[1]), tonumber(ARGV[2])
if want_step < step or (want_step == step and want_attempt < attempt) then return {'stale'} end
if want_step > step or want_attempt > attempt then return {'ahead'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'leased'} end
local fence = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3] .. '/' .. fence, 'PX', ARGV[4])
if h[1] == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running') end
local run = redis.call('HMGET', KEYS[1], 'state', 'stop')
local history = {}
local window = tonumber(ARGV[5])
if h[4] and h[4] ~= 'script' and window > 0 then history = redis.call('LRANGE', KEYS[5], -window, -1) end
local unpublished = {}
local behind = tonumber(h[5] or '0') - tonumber(h[6] or '0')
if behind > 0 then unpublished = redis.call('XREVRANGE', KEYS[6], '+', '-', 'COUNT', behind) end
return {'ok', fence, run[1], run[2], redis.call('GET', KEYS[4]), history, unpublished}
