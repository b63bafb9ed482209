-- PocketBase authorized creates (bench/pocketbase.sh): each request takes the next `uid token`
-- line of tokens.txt and creates a new record owned by that user (the create rule checks the
-- body's owner against the caller's id).
local uids, tokens = {}, {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("TOKENS")) do
    local uid, token = line:match("^(%S+) (%S+)$")
    uids[#uids + 1] = uid
    tokens[#tokens + 1] = token
  end
  i = math.random(1, #tokens)
end
request = function()
  i = i % #tokens + 1
  local body = '{"owner":"' .. uids[i] .. '","n":' .. math.random(1, 1000000) .. ',"title":"benchmark document","tags":["a","b"]}'
  return wrk.format("POST", "/api/collections/bench/records",
    { ["Authorization"] = tokens[i], ["Content-Type"] = "application/json" }, body)
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
