-- baseline.lua — one fixed GET, for comparing primed's request overhead with the constant-JSON
-- libmicrohttpd server (build/tools/baseline_server) under the same wrk settings. The path comes
-- from LOADTEST_PATH (default /v1/isprime?n=1000003).
local c = require "common"
c.scenario = os.getenv("LOADTEST_NAME") or "baseline"
c.expect = { [200] = true }
local path = os.getenv("LOADTEST_PATH") or "/v1/isprime?n=1000003"

c.install(function() return wrk.format("GET", path) end)
