"""Reports in Redis: one hash per report (it expires), sorted-set indexes to list them a page
at a time, and what keeps junk from pushing real reports out (core/ports.py, `ReportLog`).

Keys (P = the key prefix):
  P rep:ID               hash    v (the event JSON), room, about (uid), state, n, seq, by
                                 (the reporters' aliases, space-separated)     (expires)
  P reps:STATE           zset    report id -> filing number; STATE is open or handled
  P reps:STATE:ROOM      zset    the same, for one room
  P reps:by:ALIAS        zset    a reporter's open reports (at most per_reporter)
  P reps:about:ROOM:UID  string  the open report about UID in ROOM (later ones merge in)
  P reps:n               string  the filing counter
Indexes outlive the reports in them: an id whose hash has expired is skipped and removed
where it is met. Each script touches a bounded number of keys, whatever is stored.
"""

from __future__ import annotations

from typing import Any

from ...core.ports import FiledReport, Filing, KeptReport
from . import wire
from .connection import Link, raises_unavailable

_COMMON = """
local p = ARGV[1]
local function rkey(id) return p .. 'rep:' .. id end
local function is_open(id) return redis.call('HGET', rkey(id), 'state') == 'open' end
local function index(state, room)
  if room == '' then return p .. 'reps:' .. state end
  return p .. 'reps:' .. state .. ':' .. room
end
local function drop(id)
  local r = redis.call('HMGET', rkey(id), 'room', 'state')
  redis.call('DEL', rkey(id))
  redis.call('ZREM', index('open', ''), id)
  redis.call('ZREM', index('handled', ''), id)
  if r[1] then redis.call('ZREM', index(r[2], r[1]), id) end
end
local function sweep(key) -- the oldest entries whose report has expired (a few at a time)
  for _ = 1, 32 do
    local first = redis.call('ZRANGE', key, 0, 0)
    if #first == 0 or redis.call('EXISTS', rkey(first[1])) == 1 then return end
    redis.call('ZREM', key, first[1])
  end
end
"""

# ARGV prefix, id, room, reporter, about, event_json, ttl_ms, most, per_reporter
# -> {outcome, id, count}
FILE = (
    _COMMON
    + """
local id, room, by, about = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ttl, most, cap = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local mine = p .. 'reps:by:' .. by
for _, rid in ipairs(redis.call('ZRANGE', mine, 0, -1)) do
  if not is_open(rid) then redis.call('ZREM', mine, rid) end
end
local about_key = p .. 'reps:about:' .. room .. ':' .. about
local existing = redis.call('GET', about_key)
if existing and not is_open(existing) then existing = false end
if existing and redis.call('ZSCORE', mine, existing) then
  return {'again', existing, tonumber(redis.call('HGET', rkey(existing), 'n'))}
end
if redis.call('ZCARD', mine) >= cap then return {'capped', '', 0} end
if existing then
  local n = redis.call('HINCRBY', rkey(existing), 'n', 1)
  redis.call('ZADD', mine, redis.call('HGET', rkey(existing), 'seq'), existing)
  redis.call('PEXPIRE', mine, ttl)
  return {'merged', existing, n}
end
local seq = redis.call('INCR', p .. 'reps:n')
redis.call('HSET', rkey(id), 'v', ARGV[6], 'room', room, 'about', about, 'state', 'open',
  'n', 1, 'seq', seq)
redis.call('PEXPIRE', rkey(id), ttl)
for _, key in ipairs({index('open', ''), index('open', room), mine}) do
  redis.call('ZADD', key, seq, id)
  redis.call('PEXPIRE', key, ttl)
end
redis.call('SET', about_key, id, 'PX', ttl)
sweep(index('open', ''))
sweep(index('handled', ''))
while redis.call('ZCARD', index('open', '')) + redis.call('ZCARD', index('handled', '')) > most do
  local oldest = redis.call('ZRANGE', index('handled', ''), 0, 0)
  if #oldest == 0 then oldest = redis.call('ZRANGE', index('open', ''), 0, 0) end
  drop(oldest[1])
end
return {'new', id, 1}
"""
)

# ARGV prefix, state, room ('' = every room), before (id, '' = the newest), count
# -> {more (0/1), event, state, n, event, state, n, ...}
LIST = (
    _COMMON
    + """
local key, count = index(ARGV[2], ARGV[3]), tonumber(ARGV[5])
local top = '+inf'
if ARGV[4] ~= '' then
  local seq = redis.call('HGET', rkey(ARGV[4]), 'seq')
  if not seq then return {0} end
  top = '(' .. seq
end
local out, found = {0}, 0
for _ = 1, 8 do -- bounded: expired entries met on the way are removed
  local ids = redis.call('ZREVRANGEBYSCORE', key, top, '-inf', 'WITHSCORES', 'LIMIT', 0, count + 1)
  if #ids == 0 then return out end
  for i = 1, #ids, 2 do
    local r = redis.call('HMGET', rkey(ids[i]), 'v', 'state', 'n')
    if not r[1] then
      redis.call('ZREM', key, ids[i])
    elseif found == count then
      out[1] = 1
      return out
    else
      found = found + 1
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
      out[#out + 1] = r[3]
    end
    top = '(' .. ids[i + 1]
  end
end
return out
"""
)

# ARGV prefix, id, state -> {event, state, n}, or {} when the report is not kept
MARK = (
    _COMMON
    + """
local id, state = ARGV[2], ARGV[3]
local r = redis.call('HMGET', rkey(id), 'room', 'state', 'seq', 'about', 'v', 'n')
if not r[1] then return {} end
if r[2] ~= state then
  local ttl = math.max(redis.call('PTTL', rkey(id)), 1)
  redis.call('HSET', rkey(id), 'state', state)
  redis.call('ZREM', index(r[2], ''), id)
  redis.call('ZREM', index(r[2], r[1]), id)
  for _, key in ipairs({index(state, ''), index(state, r[1])}) do
    redis.call('ZADD', key, r[3], id)
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  end
  local about_key = p .. 'reps:about:' .. r[1] .. ':' .. r[4]
  if state == 'open' then
    redis.call('SET', about_key, id, 'PX', ttl)
  elseif redis.call('GET', about_key) == id then
    redis.call('DEL', about_key)
  end
end
return {r[5], state, r[6]}
"""
)


class Reports:
    def __init__(self, link: Link) -> None:
        self.link = link
        redis = link.redis
        self._file, self._list, self._mark = (redis.register_script(s) for s in (FILE, LIST, MARK))

    @raises_unavailable
    async def file_report(
        self, report: FiledReport, ttl: float, most: int, per_reporter: int
    ) -> Filing:
        args = [report.id, report.room, report.reporter, report.about, report.event]
        outcome, report_id, count = await self._run(
            self._file, *args, wire.ms(ttl), most, per_reporter
        )
        return Filing(wire.text(outcome), wire.text(report_id), int(count))

    @raises_unavailable
    async def list_reports(
        self, state: str, room: str | None, before: str | None, count: int
    ) -> tuple[list[KeptReport], bool]:
        flat = await self._run(self._list, state, room or "", before or "", count)
        return [_kept(flat[i : i + 3]) for i in range(1, len(flat), 3)], bool(flat[0])

    @raises_unavailable
    async def mark_report(self, report_id: str, state: str) -> KeptReport | None:
        found = await self._run(self._mark, report_id, state)
        return _kept(found) if found else None

    async def _run(self, script: Any, *args: Any) -> Any:
        return await script(keys=[], args=[self.link.prefix, *args])


def _kept(fields: list[Any]) -> KeptReport:
    event, state, count = fields
    return KeptReport(wire.text(event), wire.text(state), int(count))
