--! include lib/thread_keys.lua

-- The lifecycle of a thread is its hash B:h: f (first write), l (last write), t (its own
-- ttl; 0 = core.lifecycle.PINNED, never expires; absent: the saver's ttl) and e (when it
-- expires; absent: never), all in ms.  Times are the client's clock (lifecycle.now(),
-- passed to every script as 'now', so an injected clock works): a thread whose e <= now
-- is gone to every read, and a write to it first unlinks it, whether or not Redis has
-- expired its keys yet.  A thread without B:h (written by the earlier release) never
-- expires and has unknown times until setup adopts it (adopt.lua) or its next write.
--
-- A script computes the expiry (expiry_at) before it writes anything, and refuses a time
-- PEXPIREAT would not take (the saver validates ttl, so this is a second guard); the
-- refusal begins with 'lus refused: ' (scripts.SCRIPT_REFUSAL), which Python turns into
-- InvalidConfigError.

local function ms(x)
  return string.format('%.0f', x)
end

local function lifecycle_of(B)
  local h = redis.call('HMGET', B .. ':h', 'f', 'l', 't', 'e')
  return {f = tonumber(h[1]), l = tonumber(h[2]), t = tonumber(h[3]), e = tonumber(h[4])}
end

local function is_expired(life, now)
  return life.e ~= nil and life.e <= now
end

-- The ttl that applies to a thread: its own, else the saver's (0: none).
local function ttl_of(life, saver_ttl)
  if life.t ~= nil then return life.t end
  return saver_ttl
end

-- When a thread touched at `touched` with `ttl` expires, or false for never.
local function expiry_at(touched, ttl)
  if not ttl or ttl <= 0 then return false end
  local at = touched + ttl
  if at ~= at or at >= 2 ^ 53 or at ~= math.floor(at) then
    error('ERR lus refused: ttl of ' .. tostring(ttl) .. ' ms gives no valid expiry time')
  end
  return at
end

-- Sets e and moves every key's expiry with it, or (e false) removes e and, when
-- `persist`, the keys' expiry.  The keys expire at e, one absolute deadline for all
-- (PEXPIRE per key would read the clock once per call, and keys a millisecond apart would
-- not expire together); later by as much as the client's clock is behind the server's,
-- so that Redis never drops a thread before its expiry on the client's clock (reads
-- already miss it after e; a sweep removes what is left).
local function set_expiry(B, e, now, persist)
  local keys = thread_keys(B)
  if e then
    redis.call('HSET', B .. ':h', 'e', ms(e))
    local time = redis.call('TIME')
    local server_now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    local at = ms(e + math.max(server_now - now, 0))
    for _, key in ipairs(keys) do redis.call('PEXPIREAT', key, at) end
  else
    redis.call('HDEL', B .. ':h', 'e')
    if persist then
      for _, key in ipairs(keys) do redis.call('PERSIST', key) end
    end
  end
end

-- Before a write: unlinks the thread if it has expired (its data never comes back), and
-- computes its new expiry.  Call before writing anything.
local function begin_write(B, now, saver_ttl)
  local life = lifecycle_of(B)
  if is_expired(life, now) then
    unlink_thread(B)
    life = {}
  end
  return {life = life, e = expiry_at(now, ttl_of(life, saver_ttl))}
end

-- After a write: stamps the last write (and the first, for a new thread) and the expiry.
-- Returns the expiry in ms, '' for none.
local function finish_write(B, now, w)
  if w.life.f then
    redis.call('HSET', B .. ':h', 'l', ms(now))
  else
    redis.call('HSET', B .. ':h', 'f', ms(now), 'l', ms(now))
  end
  -- keys that may carry an expiry (an earlier e, or a thread of the earlier release) lose it
  set_expiry(B, w.e, now, w.life.e ~= nil or w.life.f == nil)
  if w.e then return ms(w.e) end
  return ''
end

-- For a read: the thread's lifecycle, or nil when it has expired at now.
local function readable(B, now)
  local life = lifecycle_of(B)
  if is_expired(life, now) then return nil end
  return life
end

-- A read that found the thread moves its expiry as a write would (not its last write),
-- with refresh_on_read ('1'), for a thread that has one.
local function refresh_on_read(B, life, now, refresh, saver_ttl)
  if refresh == '1' and life.e ~= nil then
    set_expiry(B, expiry_at(now, ttl_of(life, saver_ttl)), now, true)
  end
end
