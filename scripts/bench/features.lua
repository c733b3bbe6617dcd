-- wrk script: POST /features/{table} with BATCH random keys per request.
local keys = tonumber(os.getenv("KEYS") or "100000")
local batch = tonumber(os.getenv("BATCH") or "100")
local table_name = os.getenv("TABLE") or "features"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- Each wrk thread has its own Lua state: seed each differently, or every thread would
-- request the same keys in the same order.
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
function init(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end
request = function()
  local parts = {}
  for i = 1, batch do
    parts[i] = string.format('"k%d"', math.random(0, keys - 1))
  end
  return wrk.format(nil, "/features/" .. table_name, nil, '{"keys":[' .. table.concat(parts, ",") .. ']}')
end
