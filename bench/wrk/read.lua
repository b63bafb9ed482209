-- Point reads of random seeded documents: GET /v1/docs/bench/d<i>, i in 1..N (env N).
local n = tonumber(os.getenv("N") or "10000")
request = function()
  return wrk.format("GET", "/v1/docs/bench/d" .. math.random(1, n))
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
