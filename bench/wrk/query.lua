-- Queries over what write.lua writes: POST /v1/query for up to LIMIT (default 200) documents
-- of `writes` with n >= a random value (an ordered range scan of the n index).
local limit = tonumber(os.getenv("LIMIT") or "200")
request = function()
  local body = '{"collection":"writes","where":[["n",">=",' .. math.random(1, 20000)
    .. ']],"limit":' .. limit .. '}'
  return wrk.format("POST", "/v1/query", {["content-type"] = "application/json"}, body)
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
