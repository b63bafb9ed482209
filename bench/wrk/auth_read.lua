-- Authorized point reads: each request takes the next `uid token` line of tokens.txt (env
-- TOKENS; each wrk thread starts at its own offset and wraps around), so tokens repeat (cache
-- hits) and new ones keep arriving (full verifications), and reads a random seeded document.
local n = tonumber(os.getenv("N") or "10000")
local tokens = {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("TOKENS")) do
    local uid, token = line:match("^(%S+) (%S+)$")
    tokens[#tokens + 1] = token
  end
  i = math.random(1, #tokens)
end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/v1/docs/bench/d" .. math.random(1, n), { ["Authorization"] = "Bearer " .. tokens[i] })
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
