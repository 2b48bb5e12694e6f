#!lua name=chatd
-- The room on Redis: one stream of room events and the nick table, changed
-- only by these functions, so the log and the nick table never disagree.
--
-- Every function takes the key prefix as KEYS[1] (one Redis primary; the
-- prefix ends in ':').  Keys under it:
--   events          the stream: one entry per room event, MAXLEN ~ ARGV[1]
--   nicks           hash nick_key -> "<node> <op> <since_ms> <nick>"
--   nodes           zset node id -> lease deadline (Redis time, ms)
--   node_seq        counter: each registration is a new node id (incarnation)
--   epoch           set once; a new one means Redis lost the room
--   node:<id>       hash: op (the last op applied, for resends after a drop)
--   node:<id>:nicks set of the nick keys the node holds
-- Entry fields: t type (J P R S W T), n nick, m new nick or target,
-- x text or reason, o the node the event belongs to, c the op that wrote it,
-- b set on what a node's burst wrote for users its own users already saw,
-- f set on a rename the room imposed to settle a collision.
--
-- Write functions answer "ok", "taken" (a nick claim lost), "dup" (a resend
-- of an op already applied) or "lost" (the node's lease is gone: it was
-- reaped, and must register again).  Times are Redis's own (TIME), never a
-- node's clock.

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function append(p, maxlen, fields)
  return redis.call('XADD', p .. 'events', 'MAXLEN', '~', maxlen, '*', unpack(fields))
end

local function owner_of(value)
  local node, op, since, nick = string.match(value, '^(%d+) (%d+) (%d+) (.*)$')
  return node, op, nick
end

-- Free every nick a node holds, one PART each, and forget the node.
local function reap_node(p, maxlen, node, reason)
  local set = p .. 'node:' .. node .. ':nicks'
  local keys = redis.call('SMEMBERS', set)
  for _, key in ipairs(keys) do
    local value = redis.call('HGET', p .. 'nicks', key)
    if value then
      local holder, _, nick = owner_of(value)
      if holder == node then
        redis.call('HDEL', p .. 'nicks', key)
        append(p, maxlen, {'t', 'P', 'n', nick, 'x', reason, 'o', node})
      end
    end
  end
  redis.call('DEL', set, p .. 'node:' .. node)
  redis.call('ZREM', p .. 'nodes', node)
end

local function reap_dead(p, maxlen, now, limit)
  local dead = redis.call('ZRANGEBYSCORE', p .. 'nodes', '-inf', '(' .. now, 'LIMIT', 0, limit)
  for _, node in ipairs(dead) do
    reap_node(p, maxlen, node, 'node down')
  end
  return #dead
end

-- The caller's lease: false when it is gone or past (then reaped now).
local function alive(p, maxlen, node, now)
  local deadline = redis.call('ZSCORE', p .. 'nodes', node)
  if not deadline then
    return false
  end
  if tonumber(deadline) < now then
    reap_node(p, maxlen, node, 'node down')
    return false
  end
  return true
end

-- Apply each op of a node once: a resend after a dropped link is "dup".
local function fresh(p, node, op)
  local key = p .. 'node:' .. node
  if tonumber(redis.call('HGET', key, 'op') or '0') >= op then
    return false
  end
  redis.call('HSET', key, 'op', op)
  return true
end

-- Whether nick_key is free, reaping a dead holder first.
local function free(p, maxlen, key, now)
  local value = redis.call('HGET', p .. 'nicks', key)
  if not value then
    return true
  end
  local holder = owner_of(value)
  local deadline = redis.call('ZSCORE', p .. 'nodes', holder)
  if deadline and tonumber(deadline) >= now then
    return false
  end
  reap_node(p, maxlen, holder, 'node down')
  return true
end

local function holds(p, key, node, op)
  local value = redis.call('HGET', p .. 'nicks', key)
  if not value then
    return false
  end
  local holder, held_op = owner_of(value)
  return holder == node and held_op == op
end

local function take(p, key, node, op, since, nick)
  redis.call('HSET', p .. 'nicks', key, node .. ' ' .. op .. ' ' .. since .. ' ' .. nick)
  redis.call('SADD', p .. 'node:' .. node .. ':nicks', key)
end

-- register(maxlen, lease_ms) -> {node id, epoch, last entry id, nick...}
-- The nicks (oldest claim first) and the last entry id are one snapshot:
-- a node applies the stream from that id on.
local function register(keys, args)
  local p, lease = keys[1], tonumber(args[2])
  local now = now_ms()
  local epoch = redis.call('GET', p .. 'epoch')
  if not epoch then
    -- A new room, or one Redis lost: nodes still running hold ids of the
    -- lost room and take entries written under those ids for their own, so
    -- ids here must never be ones issued before.  Counting on from Redis's
    -- clock in ms does that (one registration per ms at most, before).
    redis.call('SET', p .. 'node_seq', now)
  end
  local node = redis.call('INCR', p .. 'node_seq')
  redis.call('ZADD', p .. 'nodes', now + lease, node)
  if not epoch then
    epoch = now .. '-' .. node
    redis.call('SET', p .. 'epoch', epoch)
  end
  local last = redis.call('XREVRANGE', p .. 'events', '+', '-', 'COUNT', 1)
  local reply = {node, epoch, last[1] and last[1][1] or '0-0'}
  local held = {}
  local flat = redis.call('HGETALL', p .. 'nicks')
  for i = 2, #flat, 2 do
    local _, op, since, nick = string.match(flat[i], '^(%d+) (%d+) (%d+) (.*)$')
    held[#held + 1] = {tonumber(since), tonumber(op), nick}
  end
  table.sort(held, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
  for _, entry in ipairs(held) do
    reply[#reply + 1] = entry[3]
  end
  return reply
end

-- beat(maxlen, node, op, lease_ms, epoch) -> "ok" | "lost" | "epoch"
local function beat(keys, args)
  local p, maxlen, node, lease = keys[1], args[1], args[2], tonumber(args[4])
  if redis.call('GET', p .. 'epoch') ~= args[5] then
    return 'epoch'
  end
  local now = now_ms()
  if not alive(p, maxlen, node, now) then
    return 'lost'
  end
  redis.call('ZADD', p .. 'nodes', 'XX', now + lease, node)
  reap_dead(p, maxlen, now, 100)
  return 'ok'
end

-- claim(maxlen, node, op, nick, nick_key)
local function claim(keys, args)
  local p, maxlen, node, op, nick, key = keys[1], args[1], args[2], tonumber(args[3]), args[4], args[5]
  local now = now_ms()
  if not alive(p, maxlen, node, now) then
    return 'lost'
  end
  if not fresh(p, node, op) then
    return holds(p, key, node, args[3]) and 'ok' or 'taken'
  end
  if not free(p, maxlen, key, now) then
    return 'taken'
  end
  take(p, key, node, op, now, nick)
  append(p, maxlen, {'t', 'J', 'n', nick, 'o', node, 'c', op})
  return 'ok'
end

-- rename(maxlen, node, op, old, old_key, new, new_key)
local function rename(keys, args)
  local p, maxlen, node, op = keys[1], args[1], args[2], tonumber(args[3])
  local old, old_key, new, new_key = args[4], args[5], args[6], args[7]
  local now = now_ms()
  if not alive(p, maxlen, node, now) then
    return 'lost'
  end
  if not fresh(p, node, op) then
    return holds(p, new_key, node, args[3]) and 'ok' or 'taken'
  end
  local held = redis.call('HGET', p .. 'nicks', old_key)
  if not held or owner_of(held) ~= node then
    return 'taken'  -- renamed by a burst meanwhile: the RENAME entry will say so
  end
  if new_key ~= old_key and not free(p, maxlen, new_key, now) then
    return 'taken'
  end
  redis.call('HDEL', p .. 'nicks', old_key)
  redis.call('SREM', p .. 'node:' .. node .. ':nicks', old_key)
  take(p, new_key, node, op, now, new)
  append(p, maxlen, {'t', 'R', 'n', old, 'm', new, 'o', node, 'c', op})
  return 'ok'
end

-- release(maxlen, node, op, nick, nick_key, reason): PART only if still held
-- by this node (a reaped node's users have had theirs).
local function release(keys, args)
  local p, maxlen, node, op, nick, key = keys[1], args[1], args[2], tonumber(args[3]), args[4], args[5]
  local now = now_ms()
  if not alive(p, maxlen, node, now) then
    return 'lost'
  end
  if not fresh(p, node, op) then
    return 'dup'
  end
  local value = redis.call('HGET', p .. 'nicks', key)
  if value and owner_of(value) == node then
    redis.call('HDEL', p .. 'nicks', key)
    redis.call('SREM', p .. 'node:' .. node .. ':nicks', key)
    local fields = {'t', 'P', 'n', nick, 'o', node, 'c', op}
    if args[6] then
      fields[#fields + 1] = 'x'
      fields[#fields + 1] = args[6]
    end
    append(p, maxlen, fields)
  end
  return 'ok'
end

-- say(maxlen, node, op, type, nick, text[, target]): SAY, WALL or TELL.
local function say(keys, args)
  local p, maxlen, node, op = keys[1], args[1], args[2], tonumber(args[3])
  if not alive(p, maxlen, node, now_ms()) then
    return 'lost'
  end
  if not fresh(p, node, op) then
    return 'dup'
  end
  local fields = {'t', args[4], 'n', args[5], 'x', args[6], 'o', node, 'c', op}
  if args[7] then
    fields[#fields + 1] = 'm'
    fields[#fields + 1] = args[7]
  end
  append(p, maxlen, fields)
  return 'ok'
end

-- A free variant of nick for the loser of a collision: nick-2, nick-3...
-- (shortened to stay within 20 characters).
local function variant(p, nick)
  for i = 2, 999 do
    local suffix = '-' .. i
    local candidate = string.sub(nick, 1, 20 - #suffix) .. suffix
    if redis.call('HEXISTS', p .. 'nicks', string.lower(candidate)) == 0 then
      return candidate
    end
  end
  return nil
end

-- sync(maxlen, node, op, [nick, nick_key, since_ms]...): after the link to
-- Redis came back (the burst), make the nick table hold exactly these local
-- users for this node.  A nick held elsewhere goes to the earlier claim; the
-- later one is renamed, never dropped.  Answers the renames of this node's
-- users: {old, new, ...}.
local function sync(keys, args)
  local p, maxlen, node, op = keys[1], args[1], args[2], tonumber(args[3])
  local now = now_ms()
  if not alive(p, maxlen, node, now) then
    return 'lost'
  end
  if not fresh(p, node, op) then
    -- a resend after a dropped link: the renames the first send made
    local answer = redis.call('HGET', p .. 'node:' .. node, 'sync')
    if answer and answer ~= '' then
      local renames = {}
      for word in string.gmatch(answer, '%S+') do
        renames[#renames + 1] = word
      end
      return renames
    end
    return {}
  end
  local want, renames = {}, {}
  for i = 4, #args, 3 do
    local nick, key, since = args[i], args[i + 1], args[i + 2]
    local value = redis.call('HGET', p .. 'nicks', key)
    local holder, held_op, held_since, held_nick
    if value then
      holder, held_op, held_since, held_nick = string.match(value, '^(%d+) (%d+) (%d+) (.*)$')
      if holder ~= node and not free(p, maxlen, key, now) then
        if tonumber(held_since) <= tonumber(since) then
          -- the other claim was first: this node's user takes a variant
          local new = variant(p, nick)
          if new then
            renames[#renames + 1] = nick
            renames[#renames + 1] = new
            nick, key = new, string.lower(new)
          end
        else
          -- this node's claim was first: the other user takes a variant
          local new = variant(p, held_nick)
          if new then
            redis.call('SREM', p .. 'node:' .. holder .. ':nicks', key)
            take(p, string.lower(new), holder, held_op, now, new)
            append(p, maxlen, {'t', 'R', 'n', held_nick, 'm', new, 'o', holder, 'f', '1'})
          end
        end
        value = nil
      elseif holder ~= node then
        value = nil  -- a dead node's, reaped by free()
      end
    end
    want[key] = true
    if not value then
      take(p, key, node, op, since, nick)
      append(p, maxlen, {'t', 'J', 'n', nick, 'o', node, 'c', op, 'b', '1'})
    end
  end
  local set = p .. 'node:' .. node .. ':nicks'
  for _, key in ipairs(redis.call('SMEMBERS', set)) do
    if not want[key] then
      local value = redis.call('HGET', p .. 'nicks', key)
      redis.call('SREM', set, key)
      if value then
        local holder, _, nick = owner_of(value)
        if holder == node then
          redis.call('HDEL', p .. 'nicks', key)
          append(p, maxlen, {'t', 'P', 'n', nick, 'x', 'connection lost', 'o', node, 'c', op, 'b', '1'})
        end
      end
    end
  end
  redis.call('HSET', p .. 'node:' .. node, 'sync', table.concat(renames, ' '))
  return renames
end

-- leave(maxlen, node, op, reason): a clean shutdown; PART whatever is left.
local function leave(keys, args)
  reap_node(keys[1], args[1], args[2], args[4])
  return 'ok'
end

redis.register_function('chatd_register', register)
redis.register_function('chatd_beat', beat)
redis.register_function('chatd_claim', claim)
redis.register_function('chatd_rename', rename)
redis.register_function('chatd_release', release)
redis.register_function('chatd_say', say)
redis.register_function('chatd_sync', sync)
redis.register_function('chatd_leave', leave)
