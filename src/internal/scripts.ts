/**
 * The fleet protocol, as Lua scripts that Redis runs atomically. Each touches the keys of one
 * cache key only (one hash tag, one Cluster slot). Time comes from Redis `TIME`: the server is
 * the authority on which window it is.
 *
 * Replies are flat arrays of strings so that RESP2 and RESP3 decode them the same way:
 * `[status, serverNowMs, ...]`, with the stored record as `b, f, w, t, d` ("" when absent).
 * A record that is not a hash of those five fields, or whose window has not begun, counts as
 * absent (and is overwritten by the next commit).
 */

/** Shared prelude: server time, and the stored record when the value key holds one. */
const prelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function record(k)
  if redis.call('TYPE', k).ok ~= 'hash' then return false end
  local r = redis.call('HMGET', k, 'b', 'f', 'w', 't', 'd')
  if not (tonumber(r[1]) and tonumber(r[2]) and tonumber(r[3]) and tonumber(r[4]) and r[5]) then
    return false
  end
  -- a window that has not begun cannot have been computed: a foreign or corrupt record (or a
  -- server clock that went back), which would otherwise be served as fresh until then
  if tonumber(r[3]) <= 0 or tonumber(r[1]) > math.floor(now / tonumber(r[3])) then return false end
  return r
end
local function reply(status, extra, r)
  local out = { status, tostring(now) }
  for i = 1, #extra do out[#out + 1] = tostring(extra[i]) end
  if r then
    for i = 1, 5 do out[#out + 1] = r[i] end
  end
  return out
end
local function stringAt(k)
  if redis.call('TYPE', k).ok ~= 'string' then return false end
  return redis.call('GET', k)
end
`

/** KEYS: value. Reply: `ok now [b f w t d]`. */
export const get = `${prelude}
return reply('ok', {}, record(KEYS[1]))
`

/**
 * KEYS: value, lock, fence. ARGV: windowMs, leaseMs, token, force ("1" skips the freshness
 * check, for a stored value this process cannot decode).
 * Reply: `fresh now | b f w t d`, `busy now pttl | ...`, `backoff now pttl | ...`,
 * `acquired now bucket fence | ...`.
 */
export const claim = `${prelude}
local w = tonumber(ARGV[1])
local bucket = math.floor(now / w)
local r = record(KEYS[1])
if r and ARGV[4] ~= '1' and tonumber(r[3]) == w and tonumber(r[1]) >= bucket then
  return reply('fresh', {}, r)
end
local held = stringAt(KEYS[2])
if held then
  local pttl = redis.call('PTTL', KEYS[2])
  if string.sub(held, 1, 8) == 'backoff:' then return reply('backoff', { pttl }, r) end
  return reply('busy', { pttl }, r)
end
local last = tonumber(stringAt(KEYS[3]) or '') or 0
if r and tonumber(r[2]) > last then last = tonumber(r[2]) end
local fence = last + 1
redis.call('SET', KEYS[3], fence)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return reply('acquired', { bucket, fence }, r)
`

/** KEYS: lock. ARGV: token, leaseMs. Reply: `held now` or `lost now`. */
export const renew = `${prelude}
if stringAt(KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return reply('held', {}, false)
end
return reply('lost', {}, false)
`

/**
 * KEYS: value, lock, fence, failures. ARGV: bucket, fence, windowMs, computedAt, data, token ("" for a
 * value produced while Redis was unreachable, offered back without a lock).
 * Accepted when the bucket is not in the future, the fence is the latest one issued (holders
 * only), and `(bucket, fence)` is not older than the stored record of the same window.
 * Reply: `committed now`, or `future|fenced|older now | b f w t d`.
 */
export const commit = `${prelude}
local b = tonumber(ARGV[1])
local f = tonumber(ARGV[2])
local w = tonumber(ARGV[3])
if b > math.floor(now / w) then return reply('future', {}, record(KEYS[1])) end
local r = record(KEYS[1])
if ARGV[6] ~= '' then
  local last = tonumber(stringAt(KEYS[3]) or '') or 0
  if f < last then return reply('fenced', {}, r) end
end
if r and tonumber(r[3]) == w then
  local sb = tonumber(r[1])
  local sf = tonumber(r[2])
  if b < sb or (b == sb and f < sf) then return reply('older', {}, r) end
end
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'f', ARGV[2], 'w', ARGV[3], 't', ARGV[4], 'd', ARGV[5])
redis.call('DEL', KEYS[4])
if ARGV[6] ~= '' and stringAt(KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
return reply('committed', {}, false)
`

/**
 * KEYS: lock, failures. ARGV: token, baseMs, maxMs. Drops our lock or, when `baseMs > 0`, turns
 * it into a back-off marker so that the fleet does not retry a failing producer at once. The
 * marker lasts `baseMs * 2^(n-1)` (at most `maxMs`), `n` counting failures fleet-wide since the
 * last commit. Reply: `released now`, `backoff now ms` or `lost now`.
 */
export const release = `${prelude}
if stringAt(KEYS[1]) ~= ARGV[1] then return reply('lost', {}, false) end
local base = tonumber(ARGV[2])
if base > 0 then
  local n = (tonumber(stringAt(KEYS[2]) or '') or 0) + 1
  redis.call('SET', KEYS[2], n)
  local ms = math.max(1, math.floor(math.min(base * 2 ^ math.min(n - 1, 30), tonumber(ARGV[3]))))
  redis.call('SET', KEYS[1], 'backoff:' .. ARGV[1], 'PX', ms)
  return reply('backoff', { ms }, false)
end
redis.call('DEL', KEYS[1])
return reply('released', {}, false)
`
