-- wrk script for bench/intake_bench.py: every request is a different prepared, signed
-- event (a file of "<X-LeadFlow-Signature>\t<body>" lines), so LeadFlow's duplicate check
-- never short-cuts one. Thread n of T takes lines n, n+T, ...; running out of lines is
-- reported ("wrapped") instead of silently re-sending events.
--   wrk -t T -c C -d 10s -s bench/intake_wrk.lua <url> -- T <file>

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local stride = tonumber(args[1])
  local n = 0
  prepared = {}
  for line in io.lines(args[2]) do
    if n % stride == id then
      local tab = line:find("\t", 1, true)
      prepared[#prepared + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-LeadFlow-Signature"] = line:sub(1, tab - 1),
      }, line:sub(tab + 1))
    end
    n = n + 1
  end
  position = 0
  wrapped = 0
end

function request()
  position = position + 1
  if position > #prepared then
    position = 1
    wrapped = 1
  end
  return prepared[position]
end

function done(summary, latency, requests)
  local wrapped_any = 0
  for _, thread in ipairs(threads) do
    if thread:get("wrapped") == 1 then wrapped_any = 1 end
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d,'
      .. ' "timeouts": %d, "p50_ms": %.2f, "p99_ms": %.2f, "wrapped": %d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, wrapped_any))
end
