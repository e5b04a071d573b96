"""The Lua scripts that change a sensor's buffer; each runs atomically inside Redis.

One call of ``APPLY`` touches the keys of many sensors; on Redis Cluster the caller groups the
sensors by slot, so each call touches one slot.
Numbers written back go through ``string.format('%d')``: Lua's default number formatting turns
13-digit millisecond timestamps into exponent notation.
"""

# KEYS: per sensor, its meta hash and its bins string (vigil/buffer/layout.py). One call applies
# many sensors' events: their keys must share a Redis Cluster slot (RollingBuffer groups them so).
# ARGV: bin ms, steps, ttl ms, features, resend tail size, grid stamp, then the scoring cadence
# (vigil/buffer/cadence.py): span ms (0: none) and the fewest events a scored window holds; then
# per sensor: partition, packed events (per event: offset and timestamp as little-endian doubles,
# then float32 values), the label of its last labelled event ('' when none): the trainer's
# "latest label", its phase, and the window end the caller has just scored ('' when none).
# Returns per sensor {added, redelivered, too_old, stored, newest, pending, resent,
# other_partition, {offsets of the too-old events}, events taken}: fewer events taken than sent
# means the apply stopped at a scoring point, before the event that completes it.
SHARED_ARGS, PER_SENSOR_ARGS = 8, 5
APPLY = r"""
local bin_ms, steps, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local nf, cap, grid = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local every, min_events = tonumber(ARGV[7]), tonumber(ARGV[8])
local function fmt(x) return string.format('%d', x) end
-- Redis's clock, once a call: a sensor's keys get their TTL again only when it was last set a bin
-- or more ago (the field ttl_at), not at every call. A PEXPIRE is among the costliest commands a
-- script calls, and a live sensor comes several times a minute; the keys still outlive the last
-- event by the TTL less a bin, which the TTL holds as slack (BufferLayout.ttl_ms).
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- One bin's record: count, then per feature the mean above the minimum, the minimum, the maximum,
-- then the co-moments (upper triangle).
local nco = nf * (nf + 1) / 2
local rfmt = '<I4' .. string.rep('f', 3 * nf + nco)
local vfmt = '<' .. string.rep('f', nf)
local rsize, tsize = 4 + 4 * (3 * nf + nco), 4 + 4 * nf
local ring_bytes = steps * rsize
local zero = string.rep('\0', rsize)
-- Scratch of add(), shared by every event: a table per event would be garbage at once.
local d, e = {}, {}
-- The format of m tail records, packed in one call (most calls write a run of the same size).
local runfmts = {}
local function runfmt(m)
  local f = runfmts[m]
  if not f then f = '<' .. string.rep('I4' .. string.rep('f', nf), m); runfmts[m] = f end
  return f
end

-- One sensor's events: its meta hash and bins string, the partition they came from, the packed
-- events, the label, its phase, and the window end just scored.
local function apply(meta, bins, part, blob, label, phase, just_scored)
  local field, old_field = 'o:' .. part, 'old:' .. part
  local m = redis.call('HMGET', meta, field, 'newest', 'n', 'pending', 'part', old_field, 'grid', 'tail', 'scored_end',
                       'ttl_at')
  local applied = tonumber(m[1]) or -1
  local newest = tonumber(m[2])
  local n, pending, tail_n = tonumber(m[3]) or 0, tonumber(m[4]) or 0, tonumber(m[8]) or 0
  local ttl_at = tonumber(m[10])

  -- Bins written on another grid (or a hash without one: the raw events of the layout before bins)
  -- cannot be converted: the sensor's buffer starts again from the events to come, and what this
  -- hash said about the old one (applied offsets included) goes with it. Alert state and label stay.
  if m[7] ~= grid then
    local drop = {}
    local all = redis.call('HGETALL', meta)
    for i = 1, #all, 2 do
      local name = all[i]
      if string.sub(name, 1, 2) == 'o:' or string.sub(name, 1, 4) == 'old:' or name == 'newest' or name == 'n'
         or name == 'pending' or name == 'tail' then
        drop[#drop + 1] = name
      end
    end
    if #drop > 0 then redis.call('HDEL', meta, unpack(drop)) end
    applied, newest, n, pending, tail_n, m[6], ttl_at = -1, nil, 0, 0, 0, nil, nil
    redis.call('SET', bins, string.rep('\0', ring_bytes + cap * tsize), 'PX', ttl)
    redis.call('HSET', meta, 'grid', grid)
  end

  -- Offsets of this partition's recent too-old events: a replay of them (after a crash that lost
  -- their dead letters) reports them too old again instead of calling them redelivered.
  local recent_old, old_list = {}, {}
  if m[6] then
    for o in string.gmatch(m[6], '[^,]+') do recent_old[tonumber(o)] = true; old_list[#old_list + 1] = o end
  end

  local recs, dirty = {}, {}
  local function record(slot)
    local r = recs[slot]
    if r == nil then
      r = redis.call('GETRANGE', bins, slot * rsize, slot * rsize + rsize - 1)
      if #r < rsize then r = zero end
      recs[slot] = r
    end
    return r
  end

  -- Bins from+1..to enter the window: their slots held bins that just left it.
  local function advance(from, to)
    if to - from >= steps then
      for s = 0, steps - 1 do recs[s] = zero; dirty[s] = true end
      n = 0
      return
    end
    for b = from + 1, to do
      local s = b % steps
      n = n - struct.unpack('<I4', record(s))
      recs[s] = zero; dirty[s] = true
    end
  end

  -- Welford's update in float64, stored back as float32: vigil/buffer/bins.py update() is the
  -- same arithmetic in the same order (the offline path), so change both or neither.
  local function add(slot, x)
    local f = {struct.unpack(rfmt, record(slot))}
    local count = f[1]
    local n1 = count + 1
    for i = 1, nf do
      local lo, hi = 1 + nf + i, 1 + 2 * nf + i
      local mean = 0
      if count > 0 then mean = f[lo] + f[1 + i] end
      d[i] = x[i] - mean
      local mean1 = mean + d[i] / n1
      e[i] = x[i] - mean1
      if count == 0 or x[i] < f[lo] then f[lo] = x[i] end
      if count == 0 or x[i] > f[hi] then f[hi] = x[i] end
      f[1 + i] = mean1 - f[lo]
    end
    local k = 1 + 3 * nf
    for i = 1, nf do
      for j = i, nf do
        k = k + 1
        f[k] = f[k] + d[i] * e[j]
      end
    end
    f[1] = n1
    recs[slot] = struct.pack(rfmt, unpack(f, 1, 1 + 3 * nf + nco))
    dirty[slot] = true
  end

  -- The resend tail: the latest events as they arrived, a ring of cap records. It is read only
  -- to check a late event; new records are written at the end, in place. This call's added
  -- events are kept as numbers (fresh: per event its time modulo 2^32, then its values) and
  -- packed into records once, at the end: the values came from float32, so they pack back to
  -- the bytes that were sent.
  local rlen = 1 + nf
  local tail, fresh, nfresh = nil, {}, 0
  local function fresh_record(k)
    local at = (k - 1) * rlen + 1
    return struct.pack(runfmt(1), unpack(fresh, at, at + nf))
  end
  local function resent_event(rec)
    if not tail then
      tail = {}
      local data = redis.call('GETRANGE', bins, ring_bytes, ring_bytes + cap * tsize - 1)
      for i = 0, math.min(tail_n, cap) - 1 do tail[i + 1] = string.sub(data, i * tsize + 1, (i + 1) * tsize) end
    end
    for _, r in ipairs(tail) do if r == rec then return true end end
    for k = math.max(1, nfresh - cap + 1), nfresh do if fresh_record(k) == rec then return true end end
    return false
  end

  -- Per event, in offset order: skip what this partition already applied (replay), drop what is
  -- older than the window or a resend of a recent event, and add the rest to its bin.
  -- A scoring point: the event opens a later span of the cadence than the newest one, and the
  -- window as it stands (ending at the newest event) is due and not yet scored. Checked after a
  -- crash too: a point whose score was never written is found again when its events are re-read.
  local scored_end = tonumber(m[9])
  local function completes_point(ts)
    if every <= 0 or not newest or ts <= newest or n < min_events then return false end
    if math.floor((ts - phase) / every) <= math.floor((newest - phase) / every) then return false end
    return newest ~= scored_end and newest ~= just_scored
  end

  local added, dup, old, resent, old_offsets = 0, 0, 0, 0, {}
  local step = 16 + 4 * nf
  local start_applied = applied
  local taken = 0
  local top = newest and math.floor(newest / bin_ms)
  for pos = 1, #blob, step do
    local off, ts = struct.unpack('<dd', blob, pos)
    if off > applied and completes_point(ts) then break end
    taken = taken + 1
    if off <= applied then
      if recent_old[off] then
        old = old + 1; old_offsets[#old_offsets + 1] = off
      else
        dup = dup + 1
      end
    else
      applied = off
      local b = math.floor(ts / bin_ms)
      if top and b <= top - steps then
        old = old + 1; old_offsets[#old_offsets + 1] = off
        old_list[#old_list + 1] = fmt(off)
      elseif top and ts <= newest and cap > 0
             and resent_event(struct.pack('<I4', ts % 4294967296) .. string.sub(blob, pos + 16, pos + step - 1)) then
        resent = resent + 1
      else
        if not top then
          newest, top = ts, b
        elseif ts > newest then
          if b > top then advance(top, b); top = b end
          newest = ts
        end
        local x = {struct.unpack(vfmt, blob, pos + 16)}
        add(b % steps, x)
        if cap > 0 then
          local at = nfresh * rlen
          fresh[at + 1] = ts % 4294967296
          for i = 1, nf do fresh[at + 1 + i] = x[i] end
          nfresh = nfresh + 1
        end
        n = n + 1
        added = added + 1
      end
    end
  end

  -- The meta fields this call changed, written in one HSET.
  local set = {}
  if added > 0 then
    for s in pairs(dirty) do redis.call('SETRANGE', bins, s * rsize, recs[s]) end
    -- The last cap of this batch's events go to the tail's next slots, in at most two runs.
    local from = math.max(1, nfresh - cap + 1)
    local slot = (tail_n + from - 1) % cap
    while from <= nfresh do
      local m = math.min(nfresh - from + 1, cap - slot)
      redis.call('SETRANGE', bins, ring_bytes + slot * tsize,
                 struct.pack(runfmt(m), unpack(fresh, (from - 1) * rlen + 1, (from + m - 1) * rlen)))
      from, slot = from + m, 0
    end
    tail_n = tail_n + nfresh
    pending = pending + added
    set = {'newest', fmt(newest), 'n', fmt(n), 'pending', fmt(pending), 'tail', fmt(tail_n)}
  end
  if applied ~= start_applied then
    set[#set + 1] = field; set[#set + 1] = fmt(applied)
    if label ~= '' then set[#set + 1] = 'label'; set[#set + 1] = label end
    if not m[5] then set[#set + 1] = 'part'; set[#set + 1] = part end
    if #old_list > 0 then
      set[#set + 1] = old_field; set[#set + 1] = table.concat(old_list, ',', math.max(1, #old_list - 31))
    end
  end
  if (added > 0 or applied ~= start_applied) and (not ttl_at or now - ttl_at >= bin_ms or now < ttl_at) then
    redis.call('PEXPIRE', bins, ttl)
    redis.call('PEXPIRE', meta, ttl)
    set[#set + 1] = 'ttl_at'; set[#set + 1] = fmt(now)
  end
  if #set > 0 then redis.call('HSET', meta, unpack(set)) end
  local other = (m[5] and m[5] ~= part) and 1 or 0
  return {added, dup, old, n, newest or -1, pending, resent, other, old_offsets, taken}
end

local out = {}
for i = 1, #KEYS / 2 do
  local a = SHARED_ARGS + (i - 1) * PER_SENSOR_ARGS
  out[i] = apply(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]),
                 tonumber(ARGV[a + 5]))
end
return out
""".replace("SHARED_ARGS", str(SHARED_ARGS)).replace("PER_SENSOR_ARGS", str(PER_SENSOR_ARGS))

# KEYS: meta hashes. Returns each one's fields and values, as HGETALL does: many sensors' hashes in
# one command, where a pipeline of HGETALLs costs redis-py a command's packing and parsing each.
READ_HASHES = r"""
local out = {}
for i = 1, #KEYS do out[i] = redis.call('HGETALL', KEYS[i]) end
return out
"""

# KEYS: meta hashes. ARGV[1]: JSON, per key the list of its field names and values (all text).
# Many sensors' HSETs in one command and one argument (see READ_HASHES): redis-py packs each
# argument of a command on its own, in Python.
WRITE_HASHES = r"""
local rows = cjson.decode(ARGV[1])
for i = 1, #KEYS do
  if #rows[i] > 0 then redis.call('HSET', KEYS[i], unpack(rows[i])) end
end
return #KEYS
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
