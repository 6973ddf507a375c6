--! include lib/thread_keys.lua

-- One absolute deadline for every key of the thread: PEXPIRE per key would read the
-- clock once per call, and keys a millisecond apart would not expire together.  A script
-- computes it (deadline) before it writes anything, and refuses a time PEXPIREAT would not
-- take (the saver validates ttl, so this is a second guard): the expiry set at the end
-- (refresh) is then a whole number of ms in range, which cannot fail after the writes.
-- The refusal begins with 'lus refused: ' (scripts.SCRIPT_REFUSAL), which Python turns
-- into InvalidConfigError.
local function deadline(ttl)
  if not ttl or ttl <= 0 then return false end
  local now = redis.call('TIME')
  local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl
  if at ~= at or at >= 2 ^ 53 or at ~= math.floor(at) then
    error('ERR lus refused: ttl of ' .. tostring(ttl) .. ' ms gives no valid expiry time')
  end
  return string.format('%.0f', at)
end

local function refresh(B, at)
  if at then
    for _, s in ipairs(THREAD_KEY_SUFFIXES) do redis.call('PEXPIREAT', B .. s, at) end
  end
end
