-- soak.lua — the soak test's mixed workload (scripts/soak.sh): cheap lookups, counts, short
-- streamed lists (JSON and text), batches, and malformed requests, so that every path that
-- allocates per request runs thousands of times. Counts statuses per thread; done() prints one
-- "SOAK requests=… 2xx=… 4xx=… 5xx=… other=…" line that soak.sh parses (5xx other than 503
-- overloaded means a bug; soak.sh fails on it).
local function digits(maxd)
  local n = math.random(1, maxd)
  local t = { tostring(math.random(1, 9)) }
  for i = 2, n do t[i] = tostring(math.random(0, 9)) end
  return table.concat(t)
end
local function base(maxexp) return string.format("%.0f", math.floor(math.random() * 10 ^ math.random(0, maxexp))) end

local kinds = {
  { 40, function() return "GET", "/v1/isprime?n=" .. digits(19) end },
  { 10, function() return "GET", "/v1/next?n=" .. digits(18) end },
  { 10, function() local lo = tonumber(base(12)); return "GET", string.format("/v1/count?from=%.0f&to=%.0f", lo, lo + 10 ^ math.random(3, 6)) end },
  { 10, function() local lo = tonumber(base(12)); return "GET", string.format("/v1/primes?from=%.0f&to=%.0f%s", lo, lo + 10 ^ math.random(2, 5), math.random(2) == 1 and "&format=text" or "") end },
  { 5,  function() return "GET", "/v1/nth?n=" .. math.random(1, 100000) end },
  { 10, function()
          local ns = {}
          for i = 1, math.random(1, 32) do ns[i] = digits(19) end
          return "POST", "/v1/batch", '{"isprime":[' .. table.concat(ns, ",") .. ']}'
        end },
  { 10, function()
          local bad = { "/v1/isprime?n=-1", "/v1/isprime?n=abc", "/v1/isprime", "/v1/nope",
                        "/v1/isprime?n=18446744073709551616", "/v1/count?from=9&to=1",
                        "/v1/isprime?n=7&x=" .. string.rep("y", math.random(1, 500)) }
          return "GET", bad[math.random(1, #bad)]
        end },
  { 5,  function() return "GET", "/healthz" end },
}
local total = 0
for _, k in ipairs(kinds) do total = total + k[1] end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6) + #threads)
  c2, c4, c5, c503, other = 0, 0, 0, 0, 0
end
function request()
  local r = math.random() * total
  for _, k in ipairs(kinds) do
    r = r - k[1]
    if r <= 0 then
      local method, path, body = k[2]()
      if body then
        return wrk.format(method, path, { ["Content-Type"] = "application/json" }, body)
      end
      return wrk.format(method, path)
    end
  end
end
function response(status, headers, body)
  if status >= 200 and status < 300 then c2 = c2 + 1
  elseif status >= 400 and status < 500 then c4 = c4 + 1
  elseif status == 503 then c503 = c503 + 1
  elseif status >= 500 then c5 = c5 + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local t = { c2 = 0, c4 = 0, c5 = 0, c503 = 0, other = 0 }
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  io.write(string.format("SOAK requests=%d 2xx=%d 4xx=%d 503=%d 5xx=%d other=%d socket_errors=%d p99_ms=%.1f\n",
    summary.requests, t.c2, t.c4, t.c503, t.c5, t.other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99) / 1000))
end
