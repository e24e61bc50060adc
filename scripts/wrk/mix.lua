-- mix.lua — a plausible production mix: mostly cheap lookups, some counts, some short lists, a
-- few batches, nth, and the probes an orchestrator sends.
local c = require "common"
c.scenario = "mix"
c.expect = { [200] = true, [404] = true }

local function small()
  local ops = { "isprime", "next", "prev" }
  return wrk.format("GET", "/v1/" .. ops[math.random(1, 3)] .. "?n=" .. c.rand_digits(19))
end
local function count()
  local from = tonumber(c.rand_base(15))
  return wrk.format("GET", "/v1/count?from=" .. c.fmt(from) .. "&to=" ..
    c.fmt(from + 10 ^ math.random(3, 6)))
end
local function list()
  local from = tonumber(c.rand_base(12))
  return wrk.format("GET", "/v1/primes?from=" .. c.fmt(from) .. "&to=" ..
    c.fmt(from + 10 ^ math.random(2, 4)))
end
local function nth()
  return wrk.format("GET", "/v1/nth?n=" .. c.fmt(math.random(1, 10 ^ math.random(1, 6))))
end
-- {"queries":[{"op":"isprime","n":"…"}, …]}: numbers as strings (JSON integers stop at 2^63).
local function batch()
  local ops = { "isprime", "next", "prev" }
  local qs = {}
  for i = 1, math.random(1, 16) do
    qs[i] = string.format('{"op":"%s","n":"%s"}', ops[math.random(1, 3)], c.rand_digits(19))
  end
  local body = '{"queries":[' .. table.concat(qs, ",") .. ']}'
  return wrk.format("POST", "/v1/batch", { ["Content-Type"] = "application/json" }, body)
end
local function probe()
  return wrk.format("GET", math.random(1, 2) == 1 and "/healthz" or "/readyz")
end

local kinds = {
  { 60, small }, { 15, count }, { 12, list }, { 5, nth }, { 5, batch }, { 3, probe },
}

c.install(function() return c.pick(kinds)() end)
