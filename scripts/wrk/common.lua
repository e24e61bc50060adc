-- common.lua — what every primed wrk scenario shares: per-thread status counting, random 64-bit
-- numbers as decimal strings, and one report (requests/s, latency percentiles, statuses) printed
-- by done() in a human form and as one "RESULT k=v …" line that scripts/bench-report.sh parses.
--
-- Loaded with require "common" (scripts/loadtest.sh puts scripts/wrk/ on LUA_PATH). A scenario
-- sets M.scenario, M.expect (statuses that are not errors for it) and a request function, then
-- calls M.install(request_fn) which defines wrk's global hooks.
--
-- wrk runs one Lua state per thread plus one for setup/done; counters live in each thread's
-- global `statuses` table and done() collects them with thread:get (a copy), so the hot path
-- takes no locks.
local M = {}

M.scenario = "unnamed"
M.expect = { [200] = true }

local threads = {}

-- Decimal string of a random integer with 1…maxdigits digits (maxdigits <= 19, so every value
-- is below 10^19 < 2^64). Lua numbers are doubles: beyond 2^53 digits are built as text.
function M.rand_digits(maxdigits)
  local nd = math.random(1, maxdigits)
  local t = { tostring(math.random(1, 9)) }
  for i = 2, nd do t[i] = tostring(math.random(0, 9)) end
  if nd == 1 and math.random(1, 10) == 1 then return "0" end
  return table.concat(t)
end

-- An integer below 2^53 (exact in a double) as a decimal string, spread over magnitudes
-- 10^0 … 10^maxexp so small and large ranges are both exercised.
function M.rand_base(maxexp)
  local e = math.random(0, maxexp)
  return string.format("%.0f", math.floor(math.random() * 10 ^ e))
end

function M.fmt(x) return string.format("%.0f", x) end

-- Weighted choice: items = { {weight, value}, … }.
function M.pick(items)
  local total = 0
  for _, it in ipairs(items) do total = total + it[1] end
  local r = math.random() * total
  for _, it in ipairs(items) do
    r = r - it[1]
    if r <= 0 then return it[2] end
  end
  return items[#items][2]
end

local function thread_setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local function thread_init(args)
  statuses = {}
  local id = thread_id or 0
  math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
end

local function on_response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function ms(us) return string.format("%.3f", us / 1000) end

local function report(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for code, n in pairs(s) do all[code] = (all[code] or 0) + n end
    end
  end
  local secs = summary.duration / 1e6
  local rps = summary.requests / secs
  local e = summary.errors
  local sock = e.connect + e.read + e.write + e.timeout
  local codes = {}
  for code in pairs(all) do table.insert(codes, code) end
  table.sort(codes)
  local parts, unexpected, c2, c4, c5 = {}, 0, 0, 0, 0
  for _, code in ipairs(codes) do
    local n = all[code]
    table.insert(parts, string.format("%d=%d", code, n))
    if not M.expect[code] then unexpected = unexpected + n end
    if code >= 200 and code < 300 then c2 = c2 + n
    elseif code >= 400 and code < 500 then c4 = c4 + n
    elseif code >= 500 then c5 = c5 + n end
  end
  local p = {}
  for _, q in ipairs({ 50, 90, 99, 99.9 }) do p[q] = latency:percentile(q) end
  io.write(string.format("scenario %s: %.1f requests/s (%d requests in %.2f s, %.2f MB/s)\n",
    M.scenario, rps, summary.requests, secs, summary.bytes / secs / 1e6))
  io.write(string.format("  latency ms: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
    ms(p[50]), ms(p[90]), ms(p[99]), ms(p[99.9]), ms(latency.max)))
  io.write(string.format("  statuses: %s  (unexpected for this scenario: %d)\n",
    #parts > 0 and table.concat(parts, " ") or "none", unexpected))
  io.write(string.format("  socket errors: connect %d read %d write %d timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format(
    "RESULT scenario=%s requests=%d seconds=%.3f rps=%.1f mbps=%.3f p50_us=%d p90_us=%d " ..
    "p99_us=%d p999_us=%d max_us=%d s2xx=%d s4xx=%d s5xx=%d unexpected=%d sock_errors=%d " ..
    "statuses=%s\n",
    M.scenario, summary.requests, secs, rps, summary.bytes / secs / 1e6, p[50], p[90], p[99],
    p[99.9], latency.max, c2, c4, c5, unexpected, sock,
    #parts > 0 and table.concat(parts, ",") or "none"))
end

-- Define wrk's global hooks. request_fn() returns the request string (wrk.format(…)).
function M.install(request_fn)
  setup = thread_setup
  init = thread_init
  request = request_fn
  response = on_response
  done = report
  -- Optional pacing (used by tests that need steady, light traffic rather than a flood).
  local d = tonumber(os.getenv("LOADTEST_DELAY_MS") or "")
  if d and d > 0 then delay = function() return d end end
end

return M
