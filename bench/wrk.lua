-- One static request per scenario, configured from the environment (no
-- per-request Lua: wrk's fast path). done() prints one JSON line for run.sh.
--   WRK_METHOD      GET | OPTIONS | POST   (default GET)
--   WRK_ORIGIN      Origin header value     (default none)
--   WRK_PREFLIGHT   1: add Access-Control-Request-Method/-Headers
--   WRK_BODY_BYTES  request body size in bytes (default 0: no body)
--   WRK_CLOSE       1: send Connection: close (one request per connection)
wrk.method = os.getenv("WRK_METHOD") or "GET"
local origin = os.getenv("WRK_ORIGIN")
if origin and origin ~= "" then
   wrk.headers["Origin"] = origin
end
if os.getenv("WRK_PREFLIGHT") == "1" then
   wrk.headers["Access-Control-Request-Method"] = "PUT"
   wrk.headers["Access-Control-Request-Headers"] = "content-type, x-custom"
end
local body_bytes = tonumber(os.getenv("WRK_BODY_BYTES") or "0") or 0
if body_bytes > 0 then
   wrk.body = string.rep("x", body_bytes)
   wrk.headers["Content-Type"] = "application/octet-stream"
end

if os.getenv("WRK_CLOSE") == "1" then
   wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'JSON {"requests":%d,"bytes":%d,"duration_us":%d,"err_connect":%d,"err_read":%d,' ..
      '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p99_us":%d}\n',
      summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
