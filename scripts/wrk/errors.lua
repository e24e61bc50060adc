-- errors.lua — malformed and impossible requests only: every reply must be a 4xx from the error
-- table (never 2xx, never 5xx), and the server must stay as fast as for valid small requests.
local c = require "common"
c.scenario = "errors"
c.expect = { [400] = true, [404] = true, [405] = true, [413] = true, [414] = true }

local bad = {
  { "GET", "/v1/isprime?n=abc" },                       -- 400 bad_parameter
  { "GET", "/v1/isprime?n=-5" },                        -- 400 bad_parameter (sign)
  { "GET", "/v1/isprime?n=18446744073709551616" },      -- 400 bad_parameter (overflow)
  { "GET", "/v1/isprime" },                             -- 400 missing_parameter
  { "GET", "/v1/isprime?n=7&bogus=1" },                 -- 400 unknown_parameter
  { "GET", "/v1/count?from=100&to=10" },                -- 400 bad_parameter (from > to)
  { "GET", "/v1/primes?from=0&to=18446744073709551615" }, -- 400 limit_exceeded
  { "GET", "/v1/next?n=18446744073709551557" },         -- 404 no_such_prime
  { "GET", "/v1/nope" },                                -- 404 not_found
  { "DELETE", "/v1/isprime?n=7" },                      -- 405 method_not_allowed
  { "GET", "/v1/nth?n=0" },                             -- 400 bad_parameter (nth is 1-based)
}

c.install(function()
  local r = bad[math.random(1, #bad)]
  return wrk.format(r[1], r[2])
end)
