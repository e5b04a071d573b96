"""The Lua scripts that change a sensor's buffer; each runs atomically inside Redis.

A script touches only keys that share the sensor's hash tag, so it runs unchanged on Redis Cluster.
Numbers written back go through ``string.format('%d')``: Lua's default number formatting turns
13-digit millisecond timestamps into exponent notation.
"""

# KEYS[1]: the sensor's meta hash.
# ARGV: chunk key prefix, partition, window ms, chunk ms, ttl ms, value bytes per record, packed
# events (per event: offset and timestamp as little-endian doubles, then the values), and the
# label of the batch's last labelled event ('' when none): the trainer's "latest label".
# Returns {added, redelivered, too_old, stored, newest, first_chunk, open_chunk, pending, resent,
# other_partition, {offsets of the too-old events}}.
APPLY = r"""
local meta, prefix = KEYS[1], ARGV[1]
local part, window, chunk = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, vsize, blob = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local field, old_field = 'o:' .. part, 'old:' .. part
local m = redis.call('HMGET', meta, field, 'newest', 'first', 'open', 'n', 'pending', 'part', old_field)
local applied = tonumber(m[1]) or -1
local newest, first, open = tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
local n, pending = tonumber(m[5]) or 0, tonumber(m[6]) or 0
local function fmt(x) return string.format('%d', x) end
local function key(b) return prefix .. fmt(b) end
local rsize = 4 + vsize

-- Offsets of this partition's recent too-old events: a replay of them (after a crash that lost
-- their dead letters) reports them too old again instead of calling them redelivered.
local recent_old, old_list = {}, {}
if m[8] then
  for o in string.gmatch(m[8], '[^,]+') do recent_old[tonumber(o)] = true; old_list[#old_list + 1] = o end
end

-- A resent event (same timestamp and values as one buffered) can only be at or before newest.
local stored = {}
local function buffered(b, rec, list)
  if list then
    for _, r in ipairs(list) do if r == rec then return true end end
  end
  if stored[b] == nil then stored[b] = redis.call('GET', key(b)) or false end
  local data, from = stored[b], 1
  if not data then return false end
  while true do
    local at = string.find(data, rec, from, true)
    if not at then return false end
    if (at - 1) % rsize == 0 then return true end
    from = at + 1
  end
end

-- Per event, in offset order: skip what this partition already applied (replay), drop what is
-- older than the window or already buffered, and collect the rest per time chunk as 4-byte
-- offset + values records.
local pieces, added, dup, old, resent, old_offsets = {}, 0, 0, 0, 0, {}
local step = 16 + vsize
local start_applied = applied
for pos = 1, #blob, step do
  local off, ts = struct.unpack('<dd', blob, pos)
  if off <= applied then
    if recent_old[off] then
      old = old + 1; old_offsets[#old_offsets + 1] = off
    else
      dup = dup + 1
    end
  else
    applied = off
    if newest and ts <= newest - window then
      old = old + 1; old_offsets[#old_offsets + 1] = off
      old_list[#old_list + 1] = fmt(off)
    else
      local b = math.floor(ts / chunk)
      local list = pieces[b]
      local rec = struct.pack('<I4', ts - b * chunk) .. string.sub(blob, pos + 16, pos + step - 1)
      if newest and ts <= newest and buffered(b, rec, list) then
        resent = resent + 1
      else
        if not list then list = {}; pieces[b] = list end
        list[#list + 1] = rec
        if not newest or ts > newest then newest = ts end
        added = added + 1
      end
    end
  end
end

if added > 0 then
  local top = math.floor(newest / chunk)
  local previous_open = open
  for b, list in pairs(pieces) do
    redis.call('APPEND', key(b), table.concat(list))
    redis.call('PEXPIRE', key(b), ttl)
    if not first or b < first then first = b end
  end
  -- APPEND leaves room to grow; a chunk that time has moved past is rewritten to its exact size.
  local closed = {}
  if previous_open and previous_open < top then closed[previous_open] = true end
  for b in pairs(pieces) do if b < top then closed[b] = true end end
  for b in pairs(closed) do
    local value = redis.call('GET', key(b))
    if value then redis.call('SET', key(b), value, 'PX', ttl) end
  end
  open = top
  n = n + added
  pending = pending + added
  -- Chunks whose every possible timestamp is at or before newest - window leave whole.
  local last_out = math.floor((newest - window + 1) / chunk) - 1
  if first <= last_out then
    local doomed = {}
    -- Existing chunks lie in first..previous_open (a span of about one window) or were just
    -- written; a new sensor has only the latter, however far apart its first events are.
    if previous_open then
      for b = first, math.min(last_out, previous_open) do doomed[b] = true end
    end
    for b in pairs(pieces) do if b <= last_out then doomed[b] = true end end
    for b in pairs(doomed) do
      local size = redis.call('STRLEN', key(b))
      if size > 0 then
        n = n - size / (4 + vsize)
        redis.call('DEL', key(b))
      end
    end
    first = last_out + 1
  end
  redis.call('HSET', meta, 'newest', fmt(newest), 'first', fmt(first), 'open', fmt(open),
             'n', fmt(n), 'pending', fmt(pending))
end
if applied ~= start_applied then
  redis.call('HSET', meta, field, fmt(applied))
  if ARGV[8] ~= '' then redis.call('HSET', meta, 'label', ARGV[8]) end
  if not m[7] then redis.call('HSET', meta, 'part', part) end
  if #old_list > 0 then
    redis.call('HSET', meta, old_field, table.concat(old_list, ',', math.max(1, #old_list - 31)))
  end
end
if added > 0 or applied ~= start_applied then
  redis.call('PEXPIRE', meta, ttl)
end
local other = (m[7] and m[7] ~= part) and 1 or 0
return {added, dup, old, n, newest or -1, first or -1, open or -1, pending, resent, other, old_offsets}
"""

# KEYS[1]: the topic's applied-offsets hash. ARGV: partition, offset pairs. Offsets only move
# forward, so a replayed batch does not rewind them.
RAISE_OFFSETS = r"""
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > current then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 0
"""
