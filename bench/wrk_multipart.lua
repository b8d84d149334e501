-- wrk script: POST the file $BENCH_FILE as multipart field "file", like `curl -F file=@...`.
-- At the end prints one line "BENCH_JSON {...}" with counts and latency percentiles (µs).

local path = assert(os.getenv("BENCH_FILE"), "set BENCH_FILE to the image to upload")
local handle = assert(io.open(path, "rb"))
local image = handle:read("*a")
handle:close()

local name = path:match("([^/]+)$")
local content_type = name:match("%.png$") and "image/png" or "image/jpeg"
local boundary = "wrkbenchboundary7MA4YWxkTrZu0gW"

wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="file"; filename="' .. name .. '"\r\n'
    .. "Content-Type: " .. content_type .. "\r\n\r\n"
    .. image .. "\r\n--" .. boundary .. "--\r\n"

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
        .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
        .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, latency.mean))
end
