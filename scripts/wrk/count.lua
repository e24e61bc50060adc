-- count.lua — /v1/count over ranges of 10^4 … 10^7 numbers starting anywhere below 10^15: the
-- segmented sieve's counting path, CPU-bound, small responses.
local c = require "common"
c.scenario = "count"
c.expect = { [200] = true }

c.install(function()
  local from = tonumber(c.rand_base(15))
  local width = 10 ^ math.random(4, 7)
  return wrk.format("GET", "/v1/count?from=" .. c.fmt(from) .. "&to=" .. c.fmt(from + width))
end)
