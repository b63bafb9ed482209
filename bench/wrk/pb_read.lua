-- PocketBase authorized point reads (bench/pocketbase.sh): each request takes the next `uid token`
-- line of tokens.txt (env TOKENS; each wrk thread starts at its own offset and wraps around) and
-- views a random seeded record (its id from env IDS, one a line). PocketBase takes the bare token
-- in Authorization (a "Bearer " prefix is accepted too).
local tokens, ids = {}, {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("TOKENS")) do
    local uid, token = line:match("^(%S+) (%S+)$")
    tokens[#tokens + 1] = token
  end
  for line in io.lines(os.getenv("IDS")) do
    ids[#ids + 1] = line
  end
  i = math.random(1, #tokens)
end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/collections/bench/records/" .. ids[math.random(1, #ids)],
    { ["Authorization"] = tokens[i] })
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
