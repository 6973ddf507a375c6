-- The keys of one thread are its base key B (ARGV[1] of every script) plus these
-- suffixes; they share B's hash tag, so one cluster slot.
local THREAD_KEY_SUFFIXES = {':i', ':a', ':c', ':m', ':r', ':b', ':w', ':t'}
