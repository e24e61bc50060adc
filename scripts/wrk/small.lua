-- small.lua — the cheapest requests: isprime / next / prev of random numbers of 1…19 digits
-- (Miller–Rabin, no sieve). Measures the per-request overhead of the HTTP + pool path.
local c = require "common"
c.scenario = "small"
-- prev of 0, 1 or 2 has no answer: 404 no_such_prime is a correct reply, not an error.
c.expect = { [200] = true, [404] = true }

local ops = { "isprime", "next", "prev" }

c.install(function()
  local op = ops[math.random(1, #ops)]
  return wrk.format("GET", "/v1/" .. op .. "?n=" .. c.rand_digits(19))
end)
