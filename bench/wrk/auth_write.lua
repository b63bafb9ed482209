-- Authorized durable writes: each request takes the next `uid token` line of tokens.txt and
-- replaces a document owned by that user (the rules check the owner against the token's uid).
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
  local body = '{"owner":"' .. uids[i] .. '","n":' .. math.random(1, 1000000) .. ',"title":"benchmark write"}'
  return wrk.format("PUT", "/v1/docs/notes/" .. uids[i] .. "-" .. math.random(1, 4),
    { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" }, body)
end
response = function(status)
  if status ~= 200 and status ~= 201 then error("unexpected status " .. status) end
end
