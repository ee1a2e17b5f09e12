/**
 * The Lua scripts of the leases, run on the source with EVAL (the server
 * caches them by their SHA1; EVAL needs no SCRIPT LOAD after a restart or a
 * failover). Every script that checks a lease and touches its stream gets
 * both keys, which share a cluster slot (`lease_key.ts`). Times are the
 * server's (PX, TIME): the instances' clocks do not matter.
 *
 * @module
 */

/**
 * A Lua function of the scripts that return entries: a list of entries
 * `[[id, [field, value, ...]], ...]` made flat, `[id, n, field, value, ...,
 * id, n, ...]` (n = -1: a deleted entry). Redis writes a nested array made
 * in Lua one level of one entry at a time (two writes per entry, over TLS
 * two records), a flat one in 16 KiB buffers.
 */
const FLAT_ENTRIES = `
local function flatEntries(entries)
  local flat, k = {}, 0
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    flat[k + 1] = entry[1]
    if fields then
      local m = #fields
      flat[k + 2] = m
      for j = 1, m do flat[k + 2 + j] = fields[j] end
      k = k + 2 + m
    else
      flat[k + 2] = -1
      k = k + 2
    end
  end
  return flat
end`;

/**
 * The fenced read. KEYS: n lease keys, then their n stream keys. ARGV:
 * group, consumer, COUNT, then the n values the leases must hold (each
 * acquisition of a lease has its own), then n IDs (`>` or a history ID).
 * Every lease must hold its value, or nothing is read and the reply is the
 * error `LEASELOST i,j,...` (0-based positions); else the reply is
 * `[XREADGROUP's reply, before]`: for each stream of that reply read with
 * `>`, the ID of the source entry before the first one delivered ("0-0":
 * none), false for the others. The reader checks it against the last entry
 * it was delivered: nothing may have been passed by (XGROUP SETID). A
 * lease key that several streams share (their bucket) is read once.
 *
 * Each stream's entries come flat, `[id, n, field, value, ..., id, n,
 * ...]` (n = -1: a deleted entry), not `[[id, [field, value, ...]], ...]`:
 * Redis writes a nested array made in Lua one level of one entry at a time
 * (two writes per entry, over TLS two records), a flat one in 16 KiB
 * buffers. The parse mode of the reply is `FENCED_READ_REPLY`
 * (`flatEntriesAt(3)`).
 */
export const FENCED_READ = `${FLAT_ENTRIES}
local n = #KEYS / 2
local lost = {}
local held = {}
for i = 1, n do
  local v = held[KEYS[i]]
  if v == nil then
    v = redis.call('GET', KEYS[i])
    held[KEYS[i]] = v
  end
  if v ~= ARGV[3 + i] then lost[#lost + 1] = i - 1 end
end
if #lost > 0 then return redis.error_reply('LEASELOST ' .. table.concat(lost, ',')) end
local args = {'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS'}
local fresh = {}
for i = n + 1, 2 * n do
  args[#args + 1] = KEYS[i]
  if ARGV[3 + i] == '>' then fresh[KEYS[i]] = true end
end
for i = 4 + n, #ARGV do args[#args + 1] = ARGV[i] end
local reply = redis.call(unpack(args))
local before = {}
if reply then
  for i, item in ipairs(reply) do
    local entries = item[2]
    local first = entries[1]
    before[i] = false
    if first and fresh[item[1]] then
      local prev = redis.call('XREVRANGE', item[1], '(' .. first[1], '-', 'COUNT', 1)
      before[i] = prev[1] and prev[1][1] or '0-0'
    end
    item[2] = flatEntries(entries)
  end
end
return {reply, before}
`;

/**
 * The fenced claim. KEYS: lease, stream. ARGV: lease value, group,
 * consumer, cursor, COUNT. `LEASELOST 0` unless the lease holds the value;
 * else XAUTOCLAIM's reply (min idle time 0: every pending entry) with its
 * entries flat and wrapped in a list, `[cursor, [flat], deleted]`, read
 * with `FENCED_CLAIM_REPLY` (`flatEntriesAt(2)`): over TLS a nested reply
 * cost two TLS records per entry claimed.
 */
export const FENCED_CLAIM = `${FLAT_ENTRIES}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LEASELOST 0') end
local r = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], '0', ARGV[4], 'COUNT', ARGV[5])
return {r[1], {flatEntries(r[2])}, r[3]}
`;

/**
 * Acquires leases. KEYS: lease keys. ARGV: TTL in ms, then the value each
 * key is to hold. Per key: 1 when it holds its value now, else the value it
 * holds (another acquisition's). Runs when the source is out of memory
 * (allow-oom): leases must not stop for lack of a few bytes.
 */
export const ACQUIRE = `#!lua flags=allow-oom
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1 + i], 'NX', 'PX', ARGV[1]) then
    out[i] = 1
  else
    out[i] = redis.call('GET', KEYS[i]) or ''
  end
end
return out
`;

/**
 * Takes over leases whose holder is gone. KEYS: lease keys. ARGV: TTL in ms,
 * then the n new values, then the n values the keys are expected to hold.
 * Per key: 1 taken (it still held the expected value), else 0.
 */
export const TAKE_OVER = `#!lua flags=allow-oom
local n = #KEYS
local out = {}
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1 + n + i] then
    redis.call('SET', KEYS[i], ARGV[1 + i], 'PX', ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`;

/**
 * Renews leases. KEYS: lease keys. ARGV: TTL in ms, then the value each key
 * must hold. Per key: 1 renewed; else not ours any more: 0 when the key is
 * gone (expired, or deleted), or the value another acquisition put there.
 */
export const RENEW = `
local out = {}
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v == ARGV[1 + i] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  elseif v then
    out[i] = v
  else
    out[i] = 0
  end
end
return out
`;

/** Releases leases. KEYS: lease keys. ARGV: the value each must hold to be deleted. Returns how many. */
export const RELEASE = `
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
`;

/**
 * Registers (or renews) an instance. KEYS: the registry hash (field: id,
 * value: "<expiry ms>:<token>"). ARGV: token, TTL in ms, id ("" to choose
 * one), host name, how long in ms an expired entry is kept (so that an
 * automatic id is not given to a new process while its old holder may come
 * back), and "q" for a passive instance (`run --once`: it takes part in no
 * sharing, and is not listed) or "b". An entry's value is
 * "<expiry ms>:<kind><token>". The kinds "a" (active) and "p" (passive) are
 * those of the versions that leased each stream on its own: the two kinds
 * of lease do not exclude each other, so such instances are listed apart.
 * The automatic id is "<host>-<n>", the lowest n without an entry or with
 * this token's. An id asked for is free unless a live entry of another
 * token holds it. Reply: the id (or false when it is not free), the ids of
 * every other live active instance, and the ids of the live instances of
 * an older version.
 */
export const REGISTER = `#!lua flags=allow-oom
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token, ttl, id, host, keep = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local live, known, active, older = {}, {}, {}, {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local sep = string.find(all[i + 1], ':', 1, true)
  local expiry = tonumber(string.sub(all[i + 1], 1, sep - 1))
  local holder = string.sub(all[i + 1], sep + 2)
  if expiry + keep <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    known[all[i]] = holder
    if expiry > now then
      live[all[i]] = holder
      local kind = string.sub(all[i + 1], sep + 1, sep + 1)
      if kind == 'b' then active[all[i]] = true end
      if kind == 'a' or kind == 'p' then older[#older + 1] = all[i] end
    end
  end
end
if id == '' then
  local n = 1
  while known[host .. '-' .. n] ~= nil and known[host .. '-' .. n] ~= token do n = n + 1 end
  id = host .. '-' .. n
elseif live[id] ~= nil and live[id] ~= token then
  return {false}
end
redis.call('HSET', KEYS[1], id, (now + ttl) .. ':' .. ARGV[6] .. token)
redis.call('PEXPIRE', KEYS[1], ttl + keep)
local others = {}
for name in pairs(active) do if name ~= id then others[#others + 1] = name end end
return {id, others, older}
`;

/** Unregisters an instance. KEYS: the registry hash. ARGV: id, token. */
export const UNREGISTER = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, string.find(v, ':', 1, true) + 2) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`;

/**
 * Removes a consumer that has nothing pending, while the lease is held.
 * KEYS: lease, stream. ARGV: lease value, group, consumer. 1 removed, 0
 * not (entries pending for it now, or the lease is not held: another
 * instance looks after the group of this stream).
 */
export const FENCED_DELCONSUMER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if #redis.call('XPENDING', KEYS[2], ARGV[2], '-', '+', 1, ARGV[3]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[2], ARGV[3])
return 1
`;
