-- wrk script of bench/hotpath.py: the device traffic mix, and a check of every answer.
--
-- Of every 11 requests, 10 are POST /updates and 1 is POST /stats. /updates bodies:
--   40 % a known device already on the latest bundle       -> "up_to_date" refusal
--   30 % a known device on an older bundle                  -> an offer
--   10 % a device with an override (to the "beta" channel)  -> an offer of beta's bundle
--   20 % a device never seen before                          -> an offer
-- Known device n of app a is "%08x-%04x-4000-8000-000000000000" (as bench/hotpath.py seeds):
-- devices 0..19 of each app have an override, 20..999 do not.

-- HOTPATH_PAUSE_MS (environment): each connection waits about that long before each request
-- (uniformly 0.5x to 1.5x, so the connections do not march in step). 32 connections pausing
-- 64 ms send about 500 requests a second whatever the server's speed: the latency run at a
-- fixed, moderate load. Unset, the connections send back to back (the throughput run).

local APPS, DEVICES, OVERRIDES = 100, 1000, 20
local PAUSE_MS = tonumber(os.getenv("HOTPATH_PAUSE_MS") or "0") or 0
if PAUSE_MS > 0 then
  -- wrk calls delay() before each request only if the script defines it when loaded.
  function delay()
    return math.floor(PAUSE_MS * (0.5 + math.random()))
  end
end
local LATEST, OLD = "1.0.19", "1.0.5"
local threads = {}
local counter = 0
local thread_no = 0

function setup(thread)
  thread_no = thread_no + 1
  thread:set("thread_no", thread_no)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0))
  ok, offers, up_to_date, other, bad_status = 0, 0, 0, 0, 0
  unknown = 0
end

local function body(app, device, version)
  return string.format(
    '{"app_id":"com.bench.app%03d","device_id":"%s","platform":"android",' ..
    '"version_name":"%s","version_build":"1.0.0","version_code":"1","version_os":"14",' ..
    '"plugin_version":"7.17.0","custom_id":"","is_emulator":false,"is_prod":true}',
    app, device, version)
end

local headers = {["Content-Type"] = "application/json"}

function request()
  counter = counter + 1
  local app = math.random(0, APPS - 1)
  if counter % 11 == 0 then
    local device = string.format("%08x-%04x-4000-8000-000000000000", app, math.random(OVERRIDES, DEVICES - 1))
    local stats = string.format(
      '{"app_id":"com.bench.app%03d","device_id":"%s","platform":"android",' ..
      '"version_name":"%s","old_version_name":"%s","version_build":"1.0.0","version_os":"14",' ..
      '"action":"set","plugin_version":"7.17.0","custom_id":"","is_emulator":false,"is_prod":true}',
      app, device, LATEST, OLD)
    return wrk.format("POST", "/stats", headers, stats)
  end
  local pick = math.random(1, 100)
  local device, version
  if pick <= 40 then
    device = string.format("%08x-%04x-4000-8000-000000000000", app, math.random(OVERRIDES, DEVICES - 1))
    version = LATEST
  elseif pick <= 70 then
    device = string.format("%08x-%04x-4000-8000-000000000000", app, math.random(OVERRIDES, DEVICES - 1))
    version = OLD
  elseif pick <= 80 then
    device = string.format("%08x-%04x-4000-8000-000000000000", app, math.random(0, OVERRIDES - 1))
    version = OLD
  else
    unknown = unknown + 1
    device = string.format("ffffffff-%04x-4000-8000-%012x", (thread_no or 0) % 65536, unknown + math.random(0, 2^20) * 2^24)
    version = OLD
  end
  return wrk.format("POST", "/updates", headers, body(app, device, version))
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif body:find('"kind":"up_to_date"', 1, true) then
    up_to_date = up_to_date + 1
  elseif body:find('"url"', 1, true) or body:find('"status":"ok"', 1, true) then
    offers = offers + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local totals = {offers = 0, up_to_date = 0, other = 0, bad_status = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(totals) do
      totals[key] = totals[key] + (thread:get(key) or 0)
    end
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    'HOTPATH {"requests":%d,"duration_s":%.3f,"errors":%d,"socket_errors":%d,' ..
    '"socket_error_kinds":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"non_200":%d,' ..
    '"unexpected_answers":%d,"answers":{"offer_or_ok":%d,"up_to_date":%d},' ..
    '"latency_ms":{"p50":%.2f,"p90":%.2f,"p99":%.2f,"max":%.2f,"mean":%.2f}}\n',
    summary.requests, summary.duration / 1e6,
    socket_errors + totals.bad_status + totals.other, socket_errors,
    e.connect, e.read, e.write, e.timeout, totals.bad_status,
    totals.other, totals.offers, totals.up_to_date,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
