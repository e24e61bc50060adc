-- stream.lua — streamed prime lists: /v1/primes over 10^5 … 10^6 numbers (thousands to tens of
-- thousands of primes, up to ~1 MB per response), JSON and text, so the streaming path, its
-- buffers and the memory budget are exercised. Watch RSS before/after here.
local c = require "common"
c.scenario = "stream"
c.expect = { [200] = true }

c.install(function()
  local from = tonumber(c.rand_base(12))
  local width = 10 ^ math.random(5, 6)
  local path = "/v1/primes?from=" .. c.fmt(from) .. "&to=" .. c.fmt(from + width)
  if math.random(1, 2) == 1 then path = path .. "&format=text" end
  return wrk.format("GET", path)
end)
