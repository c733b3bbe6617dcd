-- wrk script: one pull query per request, a random key of KEYS each time.
local keys = tonumber(os.getenv("KEYS") or "100000")
local table_name = os.getenv("TABLE") or "FEATURES"
local key_col = os.getenv("KEY_COL") or "ID"
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
  local k = math.random(0, keys - 1)
  local body = string.format('{"ksql":"SELECT * FROM %s WHERE %s = \'k%d\';"}', table_name, key_col, k)
  return wrk.format(nil, "/query", nil, body)
end
