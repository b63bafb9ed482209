-- A user's query for their own documents, 10 results (bench/firestore.sh). Each request takes the
-- next `uid token` line of tokens.txt (env TOKENS; each wrk thread starts at its own offset and
-- wraps around) and asks for the documents of `bench` whose owner is that uid, limit 10 (the
-- rules allow a read only of the caller's own documents, so the query must carry that filter).
-- env API=firestore (default): POST /v1/projects/$PROJECT/databases/(default)/documents:runQuery
--   with the lite SDK's body and content type (text/plain; orderBy __name__ appended, as the SDK
--   does); API=v1: claimdb's own POST /v1/query with the same filter and limit.
local api = os.getenv("API") or "firestore"
local project = os.getenv("PROJECT") or "claimdb-bench"
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
  if api == "v1" then
    return wrk.format("POST", "/v1/query",
      { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "application/json" },
      '{"collection":"bench","where":[["owner","==","' .. uids[i] .. '"]],"limit":10}')
  end
  return wrk.format("POST", "/v1/projects/" .. project .. "/databases/(default)/documents:runQuery",
    { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "text/plain;charset=UTF-8" },
    '{"structuredQuery":{"from":[{"collectionId":"bench"}],"where":{"fieldFilter":{"field":'
      .. '{"fieldPath":"owner"},"op":"EQUAL","value":{"stringValue":"' .. uids[i] .. '"}}},'
      .. '"orderBy":[{"field":{"fieldPath":"__name__"},"direction":"ASCENDING"}],"limit":10}}')
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
