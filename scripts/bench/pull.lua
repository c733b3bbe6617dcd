-- wrk script: one pull query per request, a random key of KEYS each time.
local keys = tonumber(os.getenv("KEYS") or "100000")
local table_name = os.getenv("TABLE") or "FEATURES"
local key_col = os.getenv("KEY_COL") or "ID"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time())
request = function()
  local k = math.random(0, keys - 1)
  local body = string.format('{"ksql":"SELECT * FROM %s WHERE %s = \'k%d\';"}', table_name, key_col, k)
  return wrk.format(nil, "/query", nil, body)
end
