"""The Lua scripts of the Redis broker: each runs atomically, so what one does is seen by
every node all at once or not at all (docs/architecture.md, "Redis broker").

Key names (P = the key prefix, `chatsupport:` unless the URL says otherwise):
  P seq:ROOM          string   last message id of ROOM                    (expires, see below)
  P hist:ROOM         stream   ROOM's retained messages: fields i, t, b   (MAXLEN + MINID)
  P del:ROOM          hash     id -> `deleted` JSON: ROOM's deleted messages (retention)
  P nodes             zset     node id -> lease end (ms, Redis clock)
  P reaped:NODE       string   NODE's people were announced as gone (REAP): when NODE comes
                               back it announces them as back (a day at most)
  P m:NODE:ROOM       hash     uid -> member JSON, people of ROOM on NODE (lease)
  P nr:NODE           set      rooms NODE has people in                   (lease)
  P name:KEY          string   uid holding the name KEY
  P sess:TOKENHASH    hash     node, uid, rooms, rec (SessionRecord JSON)
  P keycheck          string   8 hex digits of a keyed hash of a constant: nodes with
                               different address keys notice (never the key itself)
  P flags:KIND        hash     key -> "UNTIL_MS|value"
  P queue:NAME        zset     item -> priority * 2^40 + arrival; P queue:NAME:n its counter
  P rep:ID, P reps:*  reports and their indexes (reports.py, which has their scripts)
The channel P events carries every delivery: a JSON array whose first item says what it is
(`M`, `S`, `D`, `R`; wire.py decodes them into typed records). Two scripts build one.

Scripts read other nodes' keys (`m:NODE:*`) that they cannot declare in KEYS: the broker
targets one Redis (or a Sentinel-managed primary), not Redis Cluster.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# The time in ms on Redis' own clock: one clock for every node (their clocks may differ).
_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Live nodes, and the count of a room as the sum of its per-node member hashes.
_NODES = """
local function live_nodes(p, now)
  return redis.call('ZRANGEBYSCORE', p .. 'nodes', '(' .. now, '+inf')
end
local function room_count(p, room, nodes)
  local count = 0
  for _, node in ipairs(nodes) do
    count = count + redis.call('HLEN', p .. 'm:' .. node .. ':' .. room)
  end
  return count
end
"""

# KEYS seq, hist, nodes | ARGV channel, room_json, body, maxlen, retention_ms, seq_ttl_ms,
#                           ref_json, deadline_ms, node
# The next id, the message kept in history (bounded by count and by age) and published, in
# one step: pub/sub order is id order on every node. A script that reaches Redis after its
# deadline (a stalled Redis; the node has told the sender `unavailable` by then) does
# nothing, so a refused message never shows up later. Nor does one from a node that was
# reaped (its people were announced as gone): 'forgotten', and the node resynchronises,
# announcing them as back, before anyone of it speaks again.
PUBLISH = (
    _NOW
    + """
local now = now_ms()
if now > tonumber(ARGV[8]) then return false end
if not redis.call('ZSCORE', KEYS[3], ARGV[9]) then return 'forgotten' end
local id = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 'i', id, 't', now, 'b', ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[1],
  '["M",' .. id .. ',' .. now .. ',' .. ARGV[2] .. ',' .. ARGV[7] .. ',' .. ARGV[3] .. ']')
return {id, now}
"""
)

# KEYS seq, hist, del | ARGV after, maxlen, retention_ms
# Messages with id > after, newest first, the room's last id, and the ids of its deleted
# messages (their places count as kept). Trims by age first, so a message older than the
# window is never replayed.
HISTORY = (
    _NOW
    + """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = math.min(last - tonumber(ARGV[1]), tonumber(ARGV[2]))
if wanted <= 0 then return {last, {}, {}} end
redis.call('XTRIM', KEYS[2], 'MINID', now_ms() - tonumber(ARGV[3]))
local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', wanted)
return {last, entries, redis.call('HKEYS', KEYS[3])}
"""
)

# KEYS hist, del | ARGV id, maxlen, tombstone_json, channel, signal_json, retention_ms
# -> 1 deleted, 0 not retained (or deleted already). The entry goes from the stream (XDEL:
# no reader gets its text again), the tombstone takes its place for the retention window,
# and the `deleted` signal goes out after the message itself (scripts run one at a time).
DELETE = """
local wanted = tonumber(ARGV[1])
for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[2])) do
  local fields, id = entry[2], nil
  for i = 1, #fields, 2 do
    if fields[i] == 'i' then id = tonumber(fields[i + 1]) end
  end
  if id == wanted then
    redis.call('XDEL', KEYS[1], entry[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
    redis.call('PUBLISH', ARGV[4], ARGV[5])
    return 1
  end
  if id ~= nil and id < wanted then return 0 end
end
return 0
"""

# KEYS members(me, room), rooms(me), seq | ARGV prefix, room, uid, member_json, lease_ms
JOIN = (
    _NOW
    + _NODES
    + """
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local count = room_count(ARGV[1], ARGV[2], live_nodes(ARGV[1], now_ms()))
return {count, tonumber(redis.call('GET', KEYS[3]) or '0')}
"""
)

# KEYS members(me, room), rooms(me) | ARGV prefix, room, uid
LEAVE = (
    _NOW
    + _NODES
    + """
redis.call('HDEL', KEYS[1], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return room_count(ARGV[1], ARGV[2], live_nodes(ARGV[1], now_ms()))
"""
)

# ARGV prefix, room -> member JSONs of the room on every live node
MEMBERS = (
    _NOW
    + _NODES
    + """
local found = {}
for _, node in ipairs(live_nodes(ARGV[1], now_ms())) do
  for _, member in ipairs(redis.call('HVALS', ARGV[1] .. 'm:' .. node .. ':' .. ARGV[2])) do
    found[#found + 1] = member
  end
end
return found
"""
)

# ARGV prefix -> flat [room, count, room, count, ...] over live nodes
ROOM_COUNTS = (
    _NOW
    + _NODES
    + """
local p = ARGV[1]
local counts = {}
for _, node in ipairs(live_nodes(p, now_ms())) do
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'nr:' .. node)) do
    counts[room] = (counts[room] or 0) + redis.call('HLEN', p .. 'm:' .. node .. ':' .. room)
  end
end
local flat = {}
for room, count in pairs(counts) do
  flat[#flat + 1] = room
  flat[#flat + 1] = count
end
return flat
"""
)

# KEYS name | ARGV uid, ttl_ms -> 1 if uid holds the name now
CLAIM_NAME = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS name | ARGV uid: delete only one's own claim
RELEASE_NAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS sess | ARGV node, uid, rooms (space separated), record, ttl_ms
# -> 1 saved, 0 the person now belongs to another node (this one must let go),
#    2 the session ended (a save that lost the race with its end must not revive it)
SAVE_SESSION = """
if redis.call('HEXISTS', KEYS[1], 'dropped') == 1 then return 2 end
local owner = redis.call('HGET', KEYS[1], 'node')
if owner and owner ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'node', ARGV[1], 'uid', ARGV[2], 'rooms', ARGV[3], 'rec', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS sess | ARGV node, tombstone_ms: the record goes; a short-lived mark stays so that no
# late save brings it back (TAKE finds no record in it).
DROP_SESSION = """
local owner = redis.call('HGET', KEYS[1], 'node')
if not owner or owner == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'dropped', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS sess | ARGV prefix, node, channel -> nil, or {record, room shown present, ...}
# This node becomes the owner; every other node's membership entries for the person go now
# (so counts never show them twice, and a dead node's reaping never announces them as
# gone), and those nodes are told to let go. "Shown" means on a node still alive.
TAKE_SESSION = (
    _NOW
    + """
local record = redis.call('HGET', KEYS[1], 'rec')
if not record then return false end
local p, me = ARGV[1], ARGV[2]
local uid = redis.call('HGET', KEYS[1], 'uid')
redis.call('HSET', KEYS[1], 'node', me)
local present = {record}
local now = now_ms()
local nodes = redis.call('ZRANGE', p .. 'nodes', 0, -1, 'WITHSCORES')
for room in string.gmatch(redis.call('HGET', KEYS[1], 'rooms') or '', '%S+') do
  local shown = false
  for i = 1, #nodes, 2 do
    local node, alive = nodes[i], tonumber(nodes[i + 1]) > now
    if node ~= me and redis.call('HDEL', p .. 'm:' .. node .. ':' .. room, uid) == 1 then
      shown = shown or alive
    end
  end
  if shown then present[#present + 1] = room end
end
redis.call('PUBLISH', ARGV[3], cjson.encode({'R', uid, me}))
return present
"""
)

# KEYS nodes | ARGV node, lease_ms, rejoin -> {1 if this node was still known (else:
# resynchronise), Redis' time in ms}. A forgotten node's lease is renewed only with rejoin
# (by its resynchronisation): a heartbeat alone must not let it publish again.
HEARTBEAT = (
    _NOW
    + """
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
local now = now_ms()
if not known and ARGV[3] ~= '1' then return {0, now} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 3 * tonumber(ARGV[2]))
if known then return {1, now} end
return {0, now}
"""
)

# KEYS nodes | ARGV prefix, reaped_ttl_ms, reaper -> flat [room, count, member_json, ...] of
# people on nodes whose lease ran out; their keys go, and a node that was only stalled
# finds `reaped:NODE` when it comes back. Only one node gets each dead node (ZREM says who).
REAP = (
    _NOW
    + _NODES
    + """
local p = ARGV[1]
local now = now_ms()
local gone = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if redis.call('ZREM', KEYS[1], node) == 1 then
    if node ~= ARGV[3] and redis.call('EXISTS', p .. 'nr:' .. node) == 1 then
      redis.call('SET', p .. 'reaped:' .. node, '1', 'PX', ARGV[2])
    end
    for _, room in ipairs(redis.call('SMEMBERS', p .. 'nr:' .. node)) do
      local key = p .. 'm:' .. node .. ':' .. room
      local members = redis.call('HVALS', key)
      redis.call('DEL', key)
      for _, member in ipairs(members) do
        gone[#gone + 1] = {room, member}
      end
    end
    redis.call('DEL', p .. 'nr:' .. node)
  end
end
local nodes = live_nodes(p, now)
local flat = {}
for _, entry in ipairs(gone) do
  flat[#flat + 1] = entry[1]
  flat[#flat + 1] = room_count(p, entry[1], nodes)
  flat[#flat + 1] = entry[2]
end
return flat
"""
)

# KEYS seq | ARGV at_least, ttl_ms: after Redis lost its data, ids must still only grow.
SEED = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
"""

# KEYS keycheck | ARGV candidate, ttl_ms -> the check every node's key must give
KEYCHECK = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
"""

# KEYS flags | ARGV key, ttl_ms, value: the hash lives as long as its longest flag
SET_FLAG = (
    _NOW
    + """
local expires = now_ms() + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], expires .. '|' .. ARGV[3])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
)

# KEYS flags -> flat [key, value, ...] of live flags; expired ones are removed
FLAGS = (
    _NOW
    + """
local now = now_ms()
local flat = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local sep = string.find(all[i + 1], '|', 1, true)
  if tonumber(string.sub(all[i + 1], 1, sep - 1)) > now then
    flat[#flat + 1] = all[i]
    flat[#flat + 1] = string.sub(all[i + 1], sep + 1)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return flat
"""
)

# KEYS flags | ARGV key -> the value, or false when absent or expired
GET_FLAG = (
    _NOW
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local sep = string.find(raw, '|', 1, true)
if tonumber(string.sub(raw, 1, sep - 1)) <= now_ms() then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return false
end
return string.sub(raw, sep + 1)
"""
)

# Queue scores: priority * 2^40 + arrival number (exact in a double up to priority 8191).
# KEYS queue, counter | ARGV item, ttl_ms (0 = keep the queue's), priority, move(0/1)
# -> the item's position from 1; with move, 0 when it was not queued
ENQUEUE = """
local present = redis.call('ZSCORE', KEYS[1], ARGV[1])
if ARGV[4] == '1' and not present then return 0 end
if ARGV[4] == '1' or not present then
  local n = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) * 1099511627776 + n, ARGV[1])
end
local ttl = tonumber(ARGV[2])
if ttl == 0 then ttl = math.max(redis.call('PTTL', KEYS[1]), 1) end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return redis.call('ZRANK', KEYS[1], ARGV[1]) + 1
"""

# KEYS queue | ARGV item ('' = the first) -> what was taken, or false
DEQUEUE = """
local item = ARGV[1]
if item == '' then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #first == 0 then return false end
  item = first[1]
end
if redis.call('ZREM', KEYS[1], item) == 1 then return item end
return false
"""


def register(client: Redis) -> dict[str, AsyncScript]:
    """Every script above by name, run with EVALSHA (and loaded again if Redis forgot it)."""
    return {
        name: client.register_script(text)
        for name, text in globals().items()
        if name.isupper() and not name.startswith("_") and isinstance(text, str)
    }
