-- wrk script: POST /features/{table} with BATCH random keys per request.
local keys = tonumber(os.getenv("KEYS") or "100000")
local batch = tonumber(os.getenv("BATCH") or "100")
local table_name = os.getenv("TABLE") or "features"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(os.time())
request = function()
  local parts = {}
  for i = 1, batch do
    parts[i] = string.format('"k%d"', math.random(0, keys - 1))
  end
  return wrk.format(nil, "/features/" .. table_name, nil, '{"keys":[' .. table.concat(parts, ",") .. ']}')
end
