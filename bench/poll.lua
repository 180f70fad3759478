-- poll.lua - a wrk script: every connection polls one URL with its API key
-- and If-None-Match, keeping the ETag of the last 200 it got (as a
-- dashboard does). Prints how many answers were 304, 200 and other.
--
--   PODIUM_KEY=... wrk -c200 -d10s --latency -s bench/poll.lua URL
-- PODIUM_ETAG=0 sends no If-None-Match (every poll is a full answer).

local key = os.getenv("PODIUM_KEY") or ""
local use_etag = os.getenv("PODIUM_ETAG") ~= "0"
local etag = nil
n304, n200, nother = 0, 0, 0

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

function request()
    local h = {["Authorization"] = "Bearer " .. key}
    if use_etag and etag then h["If-None-Match"] = etag end
    return wrk.format("GET", nil, h)
end

function response(status, headers, body)
    if status == 304 then
        n304 = n304 + 1
    elseif status == 200 then
        n200 = n200 + 1
        etag = headers["ETag"] or headers["Etag"] or headers["etag"]
    else
        nother = nother + 1
    end
end

function done(summary, latency, requests)
    local a, b, c = 0, 0, 0
    for _, t in ipairs(threads) do
        a = a + t:get("n304")
        b = b + t:get("n200")
        c = c + t:get("nother")
    end
    io.write(string.format("statuses: 304=%d 200=%d other=%d\n", a, b, c))
end
