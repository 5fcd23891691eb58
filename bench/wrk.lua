-- wrk script for bench/wrk.py: POST the JSON bodies of a file (one per line) in file order,
-- starting at an offset and cycling at the end; count every answer's status; at the end print
-- one line, "bench-wrk {json}", with the counts and the latency percentiles in microseconds.
--   wrk -t1 -c N -d S -s bench/wrk.lua URL -- BODIES_FILE OFFSET
-- One wrk thread: each thread has its own Lua state, so with one the order is global and a
-- body is sent twice only after the whole file has been.

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  count = #bodies
  offset = tonumber(args[2]) or 0
  sent = -1 -- wrk calls request() once before the run, to check what it returns
  statuses = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = bodies[(offset + sent) % count + 1]
  sent = sent + 1
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local sent, count, statuses = 0, 0, {}
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("sent")
    count = thread:get("count")
    for status, n in pairs(thread:get("statuses")) do
      statuses[status] = (statuses[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(statuses) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  local e = summary.errors
  io.write(string.format(
    'bench-wrk {"duration_us": %d, "requests": %d, "sent": %d, "distinct": %d, '
      .. '"statuses": {%s}, "socket_errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"timeout": %d}, "latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, '
      .. '"p95": %d, "p99": %d}}\n',
    summary.duration, summary.requests, sent, count, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99)
  ))
end
