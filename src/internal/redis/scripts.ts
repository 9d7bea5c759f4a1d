/**
 * The fleet protocol, as Lua scripts that Redis runs atomically. Each touches the keys of one
 * cache key only (one hash tag, one Cluster slot). Time comes from Redis `TIME`: the server is
 * the authority on which window it is.
 *
 * Records also carry the key's invalidation mark (`i`), kept up to date by every script that
 * moves it, so that a read needs no script: `HMGET b f w t d k i` (`read`).
 *
 * Replies are flat arrays of strings so that RESP2 and RESP3 decode them the same way:
 * `[status, serverNowMs, mark, ...extra, b, f, w, t, d, s]`, the stored record last when there is one
 * (`s`: the identity of the schema that encoded `d`, "" when the record carries none).
 *
 * Records of a key that has no value expire: its fence counter and mark last `absentMarkMs` (a
 * day) at most until a commit gives them the record's lifetime.
 *
 * Anything under the cache's keys may be foreign or corrupt (another deployment, a restore, a
 * hand edit). The scripts never pass such data on: a record that is not a hash of whole
 * numbers `b f w`, a finite `t` and a string `d` (or whose window has not begun, or whose `k`
 * is another key's) reads as absent and is overwritten by the next commit; a counter that is
 * not a number reads as absent, a fractional one is rounded up, so fences keep increasing; a
 * lock without a lifetime gets one. So data never makes a script fail, and never trips the
 * breaker.
 *
 * Commits, invalidations and `set`s are published on the tenant's channel (`PUBLISH` from a
 * script is allowed on every topology; on a Cluster it reaches every node):
 * `c|<b>|<f>|<w>|<t>|<mark>|<key length>|<key><data>` (data only when at most 16 KiB, else empty)
 * and
 * `i|<mark>|<key length>|<key>`.
 */

import { absentMarkMs } from "../store.js"

const prelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- the store's clock in microseconds: the floor of every new version (a safe integer until 2255)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mark = -1
local function num(s)
  local n = tonumber(s)
  if not n or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end
local function int(s)
  local n = num(s)
  if not n or n ~= math.floor(n) or n > 9007199254740991 or n < -9007199254740991 then return nil end
  return n
end
local function str(n) return string.format('%.0f', n) end
local function stringAt(k)
  if redis.call('TYPE', k).ok ~= 'string' then return false end
  return redis.call('GET', k)
end
local function counter(k)
  local n = num(stringAt(k))
  if not n then return nil end
  n = math.ceil(n)
  if n < 0 or n > 9007199254740991 then return nil end
  return n
end
-- the next window's value committed early (fields 'pb pf pw pt pd pu ps' beside the record): valid,
-- or dropped; once its window has begun by the store's clock it becomes the record
local pendingFields = { 'pb', 'pf', 'pw', 'pt', 'pd', 'pu', 'ps' }
local function pending(k)
  if redis.call('TYPE', k).ok ~= 'hash' then return false end
  local p = redis.call('HMGET', k, unpack(pendingFields))
  if not p[1] and not p[5] then return false end
  local b, f, w, tt = int(p[1]), int(p[2]), int(p[3]), num(p[4])
  if not (b and f and w and tt) or type(p[5]) ~= 'string' or w <= 0 or b < 0 or f < 0 then
    redis.call('HDEL', k, unpack(pendingFields))
    return false
  end
  return { str(b), str(f), str(w), str(tt), p[5], b = b, f = f, w = w, t = tt, u = p[6] or '', s = p[7] or '' }
end
local function promote(k)
  local p = pending(k)
  if not p or p.b > math.floor(now / p.w) then return end
  redis.call('HSET', k, 'b', p[1], 'f', p[2], 'w', p[3], 't', p[4], 'd', p[5], 'u', p.u, 's', p.s)
  redis.call('HDEL', k, unpack(pendingFields))
end
local function record(k, full)
  if redis.call('TYPE', k).ok ~= 'hash' then return false end
  promote(k)
  local r = redis.call('HMGET', k, 'b', 'f', 'w', 't', 'd', 'k', 's')
  local b, f, w, tt = int(r[1]), int(r[2]), int(r[3]), num(r[4])
  if not (b and f and w and tt) or type(r[5]) ~= 'string' then return false end
  if w <= 0 or b < 0 or f < 0 or b > math.floor(now / w) then return false end
  if (r[6] or '') ~= full then return false end
  return { str(b), str(f), str(w), str(tt), r[5], b = b, f = f, w = w, t = tt, s = r[7] or '' }
end
local function reply(status, extra, r)
  local out = { status, str(now), str(mark) }
  for i = 1, #extra do out[#out + 1] = str(extra[i]) end
  if r then
    for i = 1, 5 do out[#out + 1] = r[i] end
    -- the identity of the schema that encoded it ('' in records written before identities)
    out[#out + 1] = r.s or ''
  end
  return out
end
local function expire(k, retain)
  if retain > 0 then redis.call('PEXPIRE', k, retain) end
end
-- a key's counter or mark takes its record's lifetime: retained, or kept for ever
local function follow(k, retain)
  if retain > 0 then redis.call('PEXPIRE', k, retain) else redis.call('PERSIST', k) end
end
local function setCounter(k, n, retain)
  if retain > 0 then redis.call('SET', k, str(n), 'PX', retain) else redis.call('SET', k, str(n)) end
end
local function write(k, b, f, w, tt, d, full, retain, u, g, s)
  -- a value committed early stays when it was claimed after this one (a higher fence)
  local p = pending(k)
  redis.call('DEL', k)
  if p and p.f > f then
    redis.call('HSET', k, 'pb', p[1], 'pf', p[2], 'pw', p[3], 'pt', p[4], 'pd', p[5], 'pu', p.u, 'ps', p.s)
  end
  -- 'i' copies the key's invalidation mark, so that a plain HMGET reads a record whole
  redis.call('HSET', k, 'b', str(b), 'f', str(f), 'w', str(w), 't', str(tt), 'd', d, 'i', str(mark))
  if full ~= '' then redis.call('HSET', k, 'k', full) end
  if u and u ~= '' then redis.call('HSET', k, 'u', u) end
  if g and g ~= '' then redis.call('HSET', k, 'g', g) end
  if s and s ~= '' then redis.call('HSET', k, 's', s) end
  expire(k, retain)
end
-- a record written by another version of the loader (a rolling deploy that changed its schema,
-- told by the identities: '' is every version's)
local function other(r, s)
  return s ~= '' and r.s ~= '' and r.s ~= s
end
-- the value version 's' of the loader made for the record's own version, kept beside it (fields
-- 'xb<s> xf<s> xt<s> xd<s>'): it goes with the record, and stands only while the record is that version
local function beside(k, r, s)
  local x = redis.call('HMGET', k, 'xb' .. s, 'xf' .. s, 'xt' .. s, 'xd' .. s)
  local tt = num(x[3])
  if int(x[1]) ~= r.b or int(x[2]) ~= r.f or not tt or type(x[4]) ~= 'string' then return false end
  return { r[1], r[2], r[3], str(tt), x[4], b = r.b, f = r.f, w = r.w, t = tt, s = s }
end
local function publish(channel, message)
  if channel ~= '' then redis.call('PUBLISH', channel, message) end
end
local function committed(channel, key, b, f, w, tt, d)
  if #d > 16384 then d = '' end
  publish(channel, 'c|' .. str(b) .. '|' .. str(f) .. '|' .. str(w) .. '|' .. str(tt) .. '|' .. str(mark) .. '|' .. #key .. '|' .. key .. d)
end
`

/**
 * Versions. A key's version (fence, and invalidation mark) never goes back, whatever the store
 * lost: a new fence is above every fence issued and every mark written that the store still
 * holds, and at least the store's clock in microseconds, so that it is also above every version
 * issued before the key's records were lost (a restart without persistence, `FLUSHDB`,
 * eviction, `retain` lapsing), which processes may still hold or have heard of. This assumes the
 * store's clock does not step back by more than the time between the loss and the next version
 * (docs/versions.md).
 */
const lastFence = `
local function lastFence(counterKey, r, valueKey)
  local last = counter(counterKey) or 0
  if r and r.f > last then last = r.f end
  local p = valueKey and pending(valueKey)
  if p and p.f > last then last = p.f end
  return last
end
-- the highest version issued or written: the counter, the record's fence and the mark (read into
-- 'mark'); a mark more than a minute ahead of the store's clock is foreign, repaired to the others
local function lastVersion(counterKey, r, markKey, retain, valueKey)
  local last = lastFence(counterKey, r, valueKey)
  mark = counter(markKey) or -1
  if mark > math.max(last, nowUs + 60000000) then
    mark = last
    setCounter(markKey, mark, retain)
  end
  return math.max(last, mark)
end
local function nextVersion(last)
  return math.max(last + 1, nowUs)
end
`

/** KEYS: value, mark. ARGV: full. Reply: `ok now mark [b f w t d]`. */
export const get = `${prelude}
mark = counter(KEYS[2]) or -1
return reply('ok', {}, record(KEYS[1], ARGV[1]))
`

/**
 * KEYS: value, lock, fence, mark. ARGV: windowMs, leaseMs, token, force ("1" skips the freshness
 * check, for a stored value this process cannot decode), full, retainMs, bucket (the next
 * window's number for an early claim, which then claims that window and answers `fresh` with a
 * value committed early; anything else claims the current window), schema identity ("" for none).
 * A fresh record of another schema is another version's value: `fresh` answers this version's
 * value kept beside it; without one, the lock is taken under the record's own version
 * (`acquired` with its bucket and fence, no new fence), and the commit keeps the value beside it.
 * Reply: `fresh now mark | b f w t d`, `busy now mark pttl | ...`, `backoff now mark pttl | ...`,
 * `acquired now mark bucket fence | ...`.
 */
export const claim = `${prelude}${lastFence}
local w = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local retain = tonumber(ARGV[6])
local bucket = math.floor(now / w)
-- an early claim, for the next window: only while it has not begun
local early = tonumber(ARGV[7]) == bucket + 1
if early then bucket = bucket + 1 end
local r = record(KEYS[1], ARGV[5])
local last = lastVersion(KEYS[3], r, KEYS[4], retain, KEYS[1])
local schema = ARGV[8] or ''
local alongside = false
if r and ARGV[4] ~= '1' and r.w == w and r.b >= bucket and r.f > mark then
  if not other(r, schema) then return reply('fresh', {}, r) end
  local x = beside(KEYS[1], r, schema)
  if x then return reply('fresh', {}, x) end
  alongside = true
end
if early and ARGV[4] ~= '1' then
  local p = pending(KEYS[1])
  if p and (redis.call('HGET', KEYS[1], 'k') or '') == ARGV[5] and p.w == w and p.b >= bucket and p.f > mark then
    return reply('fresh', {}, p)
  end
end
local held = stringAt(KEYS[2])
if held then
  local pttl = redis.call('PTTL', KEYS[2])
  if pttl < 0 then
    -- a lock without a lifetime (left by another deployment, restored, PERSISTed): give it one
    redis.call('PEXPIRE', KEYS[2], lease)
    pttl = lease
  end
  if string.sub(held, 1, 8) == 'backoff:' then return reply('backoff', { pttl }, r) end
  return reply('busy', { pttl }, r)
end
if alongside then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', lease)
  return reply('acquired', { r.b, r.f }, r)
end
local fence = nextVersion(last)
-- the counter of a key that has no value yet expires, whatever its retain: a lookup that always
-- fails (a crawler's unknown ids) leaves nothing for ever; a commit gives it the record's lifetime
setCounter(KEYS[3], fence, (r or retain > 0) and retain or ${absentMarkMs})
redis.call('SET', KEYS[2], ARGV[3], 'PX', lease)
return reply('acquired', { bucket, fence }, r)
`

/** KEYS: lock. ARGV: token, leaseMs. Reply: `held now mark` or `lost now mark`. */
export const renew = `${prelude}
if stringAt(KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return reply('held', {}, false)
end
return reply('lost', {}, false)
`

/**
 * KEYS: value, lock, fence, failures, mark. ARGV: bucket, fence, windowMs, computedAt, data,
 * token ("" for a value produced while Redis was unreachable, offered back without a lock),
 * full, retainMs, channel, key, the lookup's duration in ms and its tags as JSON ("" for none),
 * kept in the record for inspectors, and the identity of the schema that encoded the value ("" for
 * none), kept as `s` so that another version of the loader knows the value is not its own.
 * Accepted when the bucket is not in the future, the fence is the latest one issued (holders
 * only), and `(bucket, fence)` is not older than the stored record of the same window. A holder
 * whose fence counter is gone is refused as `fenced` unless it still holds the lock: the store lost
 * the key's records while it ran (a restart, `FLUSHDB`, eviction), and a `set` or a claim that
 * came after its own may have gone with them; the value is the claim's, not the store's latest. A
 * holder's value for the store's next window is kept as pending (`pb pf pw pt pd pu`) and
 * published as `p|<b>|<f>|<w>|<t>|<mark>|<duration ms>|<key length>|<key><data>`.
 * A value of another schema than the record's, under the record's own version and our lock, is
 * kept beside the record (`beside`) rather than replace it.
 * Reply: `committed now mark`, `pending now mark`, or `future|fenced|older now mark | b f w t d`.
 */
export const commit = `${prelude}
local b, f, w, tt = int(ARGV[1]), int(ARGV[2]), int(ARGV[3]), int(ARGV[4])
local retain = tonumber(ARGV[8])
mark = counter(KEYS[5]) or -1
local r = record(KEYS[1], ARGV[7])
local current = math.floor(now / w)
-- only a holder may commit ahead, and only for the next window
if b > current + 1 or (b > current and ARGV[6] == '') then return reply('future', {}, r) end
local schema = ARGV[13] or ''
if r and r.w == w and r.b == b and r.f == f and other(r, schema) then
  -- another version's record, of the version we made ours for: ours goes beside it
  local x = beside(KEYS[1], r, schema)
  if not (x and x.t == tt) then
    if ARGV[6] == '' or stringAt(KEYS[2]) ~= ARGV[6] then return reply('fenced', {}, r) end
    redis.call('HSET', KEYS[1], 'xb' .. schema, str(b), 'xf' .. schema, str(f), 'xt' .. schema, str(tt), 'xd' .. schema, ARGV[5])
    expire(KEYS[1], retain)
  end
  if stringAt(KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
  committed(ARGV[9], ARGV[10], b, f, w, tt, ARGV[5])
  return reply('committed', {}, false)
end
if ARGV[6] ~= '' then
  local last = counter(KEYS[3])
  if last and f < last then return reply('fenced', {}, r) end
  -- neither the counter our claim wrote nor our lock is left: the store lost the key's records
  -- while we ran, and with them, maybe, a set or another claim that fenced us
  if not last and stringAt(KEYS[2]) ~= ARGV[6] then return reply('fenced', {}, r) end
end
if r and r.w == w and (b < r.b or (b == r.b and f < r.f)) then return reply('older', {}, r) end
if b > current then
  -- early: kept beside the current record until its window opens, then promoted (record())
  local p = pending(KEYS[1])
  if p and p.w == w and (b < p.b or (b == p.b and f < p.f)) then return reply('older', {}, r) end
  if not r then redis.call('DEL', KEYS[1]) end
  redis.call('HSET', KEYS[1], 'pb', str(b), 'pf', str(f), 'pw', str(w), 'pt', str(tt), 'pd', ARGV[5], 'pu', ARGV[11], 'ps', ARGV[13], 'i', str(mark))
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'k', ARGV[7]) end
  expire(KEYS[1], retain)
  redis.call('DEL', KEYS[4])
  follow(KEYS[3], retain)
  follow(KEYS[5], retain)
  if stringAt(KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
  local d = ARGV[5]
  if #d > 16384 then d = '' end
  publish(ARGV[9], 'p|' .. str(b) .. '|' .. str(f) .. '|' .. str(w) .. '|' .. str(tt) .. '|' .. str(mark) .. '|' .. (ARGV[11] ~= '' and ARGV[11] or '0') .. '|' .. #ARGV[10] .. '|' .. ARGV[10] .. d)
  return reply('pending', {}, false)
end
write(KEYS[1], b, f, w, tt, ARGV[5], ARGV[7], retain, ARGV[11], ARGV[12], ARGV[13])
redis.call('DEL', KEYS[4])
follow(KEYS[3], retain)
follow(KEYS[5], retain)
if ARGV[6] ~= '' and stringAt(KEYS[2]) == ARGV[6] then redis.call('DEL', KEYS[2]) end
committed(ARGV[9], ARGV[10], b, f, w, tt, ARGV[5])
return reply('committed', {}, false)
`

/**
 * KEYS: lock, failures. ARGV: token, baseMs, maxMs, channel, key. Drops our lock (and tells the
 * waiting processes, so that one claims at once) or, when `baseMs > 0`, turns it into a back-off
 * marker so that the fleet does not retry a failing lookup at once. The
 * marker lasts `baseMs * 2^(n-1)` (at most `maxMs`), `n` counting failures fleet-wide since the
 * last commit (forgotten after ten times `maxMs` without one).
 * Reply: `released now mark`, `backoff now mark ms` or `lost now mark`.
 */
export const release = `${prelude}
if stringAt(KEYS[1]) ~= ARGV[1] then return reply('lost', {}, false) end
local base = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
if base > 0 then
  local n = (counter(KEYS[2]) or 0) + 1
  local ms = math.max(1, math.floor(math.min(base * 2 ^ math.min(n - 1, 30), max)))
  redis.call('SET', KEYS[2], str(n), 'PX', math.max(10 * max, 60000))
  redis.call('SET', KEYS[1], 'backoff:' .. ARGV[1], 'PX', ms)
  return reply('backoff', { ms }, false)
end
redis.call('DEL', KEYS[1])
publish(ARGV[4], 'r|' .. #ARGV[5] .. '|' .. ARGV[5])
return reply('released', {}, false)
`

/**
 * KEYS: value, fence, mark. ARGV: full, channel, key, absentMs (how long the mark of a key with
 * nothing stored lasts before a commit adopts it; 0: leave such a key unmarked). Marks every value computed so far stale:
 * the mark becomes the last version issued (the store's clock when the key holds nothing), so that a lookup running now commits a stale value
 * and the next claim recomputes. The value itself stays (last-known-good). The mark lives as
 * long as the value (or the fence counter) does.
 * Reply: `invalidated now mark`, or `absent now mark` when the key holds nothing (mark -1: not
 * marked, absentMs being 0).
 */
export const invalidate = `${prelude}${lastFence}
local r = record(KEYS[1], ARGV[1])
local issued = counter(KEYS[2])
if not r and not issued then
  if tonumber(ARGV[4]) <= 0 then return reply('absent', {}, false) end
  -- nothing stored and no fence issued: the store may have lost the key's records while
  -- processes still hold its values, and a value computed without the store (fence 0) may still
  -- be written back. The mark is the store's clock, above every version issued before the loss,
  -- so that it makes all of them stale; a commit gives it the record's lifetime
  mark = nextVersion(counter(KEYS[3]) or 0)
  setCounter(KEYS[3], mark, tonumber(ARGV[4]))
  publish(ARGV[2], 'i|' .. str(mark) .. '|' .. #ARGV[3] .. '|' .. ARGV[3])
  return reply('absent', {}, false)
end
-- the mark lives as long as the value (PTTL -1: for ever), or the counter when there is none
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then ttl = redis.call('PTTL', KEYS[2]) end
if ttl < 0 then ttl = 0 end
mark = lastVersion(KEYS[2], r, KEYS[3], ttl, KEYS[1])
-- a record but no fence counter: a value written back without a fence after the store lost the
-- key's records (or the counter was evicted); versions issued before may be higher than any the
-- store holds, and the store's clock is above them
if not issued then mark = nextVersion(mark) end
setCounter(KEYS[3], mark, ttl)
if r or pending(KEYS[1]) then redis.call('HSET', KEYS[1], 'i', str(mark)) end
if (counter(KEYS[2]) or -1) < mark then setCounter(KEYS[2], mark, ttl) end
publish(ARGV[2], 'i|' .. str(mark) .. '|' .. #ARGV[3] .. '|' .. ARGV[3])
return reply('invalidated', {}, false)
`

/**
 * KEYS: value, fence, failures, mark. ARGV: windowMs, data, full, retainMs, channel, key, schema
 * identity ("" for none).
 * Stores a value as the current window's with a new fence: newer than anything stored or being
 * computed (a running lookup's commit is then refused as fenced).
 * Reply: `set now mark bucket fence`.
 */
export const set = `${prelude}${lastFence}
local w = int(ARGV[1])
local retain = tonumber(ARGV[4])
local bucket = math.floor(now / w)
local r = record(KEYS[1], ARGV[3])
local fence = nextVersion(lastVersion(KEYS[2], r, KEYS[4], retain, KEYS[1]))
setCounter(KEYS[2], fence, retain)
write(KEYS[1], bucket, fence, w, now, ARGV[2], ARGV[3], retain, nil, nil, ARGV[7])
redis.call('DEL', KEYS[3])
follow(KEYS[4], retain)
committed(ARGV[5], ARGV[6], bucket, fence, w, now, ARGV[2])
return reply('set', { bucket, fence }, false)
`

/**
 * KEYS: value, lock, fence, failures, mark. ARGV: fromBucket, fromFence, bucket, fence,
 * windowMs, computedAt, token, full, retainMs, channel, key, the lookup's duration in ms ("" for
 * none). A lookup answered that the value of version `from` stands: the record becomes version
 * `(bucket, fence)` without its payload crossing the wire, under the checks of `commit`, and only
 * when the stored record still is version `from` (else `changed`, and the caller commits the
 * value whole). Its notice, `u|<b>|<f>|<w>|<t>|<mark>|<from b>|<from f>|<key length>|<key>`,
 * carries no payload either: a process holding version `from` has it.
 * Reply: `committed now mark`, or `future|fenced|older|changed now mark | b f w t d`.
 */
export const unchanged = `${prelude}
local fb, ff, b, f, w, tt = int(ARGV[1]), int(ARGV[2]), int(ARGV[3]), int(ARGV[4]), int(ARGV[5]), int(ARGV[6])
local retain = tonumber(ARGV[9])
mark = counter(KEYS[5]) or -1
local r = record(KEYS[1], ARGV[8])
if b > math.floor(now / w) then return reply('future', {}, r) end
if f < (counter(KEYS[3]) or 0) then return reply('fenced', {}, r) end
if not r or r.w ~= w or r.b ~= fb or r.f ~= ff then return reply('changed', {}, r) end
if b < r.b or (b == r.b and f < r.f) then return reply('older', {}, r) end
redis.call('HSET', KEYS[1], 'b', str(b), 'f', str(f), 't', str(tt), 'i', str(mark))
if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'u', ARGV[12]) end
follow(KEYS[1], retain)
redis.call('DEL', KEYS[4])
follow(KEYS[3], retain)
follow(KEYS[5], retain)
if stringAt(KEYS[2]) == ARGV[7] then redis.call('DEL', KEYS[2]) end
publish(ARGV[10], 'u|' .. str(b) .. '|' .. str(f) .. '|' .. str(w) .. '|' .. str(tt) .. '|' .. str(mark) .. '|' .. str(fb) .. '|' .. str(ff) .. '|' .. #ARGV[11] .. '|' .. ARGV[11])
return reply('committed', {}, false)
`

/**
 * KEYS: value, lock, fence, failures, mark. ARGV: full, channel, key, keepMs. Removes the key's
 * record, lock and back-off for good. The fence counter moves past every fence issued and the
 * mark to it, both kept for `keepMs`: a lookup running now is fenced, a value written back later
 * lands stale, and versions never go back. Notice: `x|<fence>|<key length>|<key>`.
 * Reply: `purged now mark fence`.
 */
export const purge = `${prelude}${lastFence}
local keep = tonumber(ARGV[4])
local fence = nextVersion(lastVersion(KEYS[3], record(KEYS[1], ARGV[1]), KEYS[5], keep))
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
setCounter(KEYS[3], fence, keep)
mark = fence
setCounter(KEYS[5], mark, keep)
publish(ARGV[2], 'x|' .. str(fence) .. '|' .. #ARGV[3] .. '|' .. ARGV[3])
return reply('purged', { fence }, false)
`

/**
 * KEYS: value, lock, mark. ARGV: full. What an inspector shows of a key, without the payload.
 * Reply: `ok now mark lock pttl has [b f w t size u g]`, `has` "1" when a record follows.
 */
export const inspect = `${prelude}
mark = counter(KEYS[3]) or -1
local held = stringAt(KEYS[2]) or ''
local pttl = held ~= '' and redis.call('PTTL', KEYS[2]) or -2
local r = record(KEYS[1], ARGV[1])
local out = { 'ok', str(now), str(mark), held, str(pttl) }
if r then
  local extra = redis.call('HMGET', KEYS[1], 'u', 'g')
  for _, v in ipairs({ '1', r[1], r[2], r[3], r[4], tostring(#r[5]), extra[1] or '', extra[2] or '' }) do out[#out + 1] = v end
else
  out[#out + 1] = '0'
end
return out
`

/**
 * KEYS: tag set. ARGV: member, retainMs. Adds a key to a tag. The set lives as long as its
 * longest-lived member may: a member kept for ever makes it permanent, and a shorter `retain`
 * never cuts a longer one. Reply: `tagged now -1`.
 */
export const tag = `${prelude}
local retain = tonumber(ARGV[2])
local before = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
if retain <= 0 then
  redis.call('PERSIST', KEYS[1])
elseif before == -2 or (before >= 0 and before < retain) then
  redis.call('PEXPIRE', KEYS[1], retain)
end
return { 'tagged', str(now), '-1' }
`

/** How many of each script's arguments are keys (all in one hash tag). */
export const keyCounts = {
  get: 2,
  claim: 4,
  renew: 1,
  commit: 5,
  release: 2,
  invalidate: 3,
  set: 4,
  inspect: 3,
  tag: 1,
  unchanged: 5,
  purge: 5
} as const

export type Name = keyof typeof keyCounts

export const all: Record<Name, string> = { get, claim, renew, commit, release, invalidate, set, inspect, tag, unchanged, purge }
