-- wrk script for the slack bench: sends pre-signed slash commands read from the file in
-- SLACK_WRK_REQUESTS (one per line: timestamp, signature, form body, tab-separated), each
-- with its own trigger_id, so every command is a new durable request. Thread k of
-- SLACK_WRK_THREADS takes lines k, k+T, k+2T, ...; a thread that runs out starts over and
-- counts it (a repeated trigger_id is answered from the store, not written again), and
-- done() prints the total so the bench can say whether any command repeated.
local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local reqs, i = {}, 0
wraps = 0 -- global: done() reads it through thread:get

function init(args)
  local total = tonumber(os.getenv("SLACK_WRK_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("SLACK_WRK_REQUESTS")) do
    if n % total == id then
      local ts, sig, body = line:match("^(%S+)\t(%S+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }, body)
    end
    n = n + 1
  end
end

function request()
  i = i + 1
  if i > #reqs then
    i, wraps = 1, wraps + 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do
    w = w + t:get("wraps")
  end
  io.write(string.format("wraps: %d\n", w))
end
