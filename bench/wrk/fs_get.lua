-- A user's read of one of their own documents (bench/firestore.sh). Each request takes the next
-- `uid token` line of tokens.txt (env TOKENS; uids are user<u>, u < USERS) and reads a random
-- document of `bench` that user owns: the seed gives bench/d<i> the owner user<i % USERS>, so
-- user<u> owns d<u + USERS*k> (d<N> for user0), N/USERS documents each.
-- env API=firestore (default): POST /v1/projects/$PROJECT/databases/(default)/documents:batchGet
--   with one name, as the lite SDK's getDoc sends it (text/plain); API=v1: claimdb's own
--   GET /v1/docs/bench/d<i>.
local api = os.getenv("API") or "firestore"
local project = os.getenv("PROJECT") or "claimdb-bench"
local n = tonumber(os.getenv("N") or "10000")
local users = tonumber(os.getenv("USERS") or "1000")
local nums, tokens = {}, {}
local i = 0
local prefix = "projects/" .. project .. "/databases/(default)/documents"
init = function(args)
  for line in io.lines(os.getenv("TOKENS")) do
    local uid, token = line:match("^(%S+) (%S+)$")
    nums[#nums + 1] = tonumber(uid:match("(%d+)$"))
    tokens[#tokens + 1] = token
  end
  i = math.random(1, #tokens)
end
request = function()
  i = i % #tokens + 1
  local d = nums[i] + users * math.random(0, n / users - 1)
  if d == 0 then d = n end
  if api == "v1" then
    return wrk.format("GET", "/v1/docs/bench/d" .. d, { ["Authorization"] = "Bearer " .. tokens[i] })
  end
  return wrk.format("POST", "/v1/" .. prefix .. ":batchGet",
    { ["Authorization"] = "Bearer " .. tokens[i], ["Content-Type"] = "text/plain;charset=UTF-8" },
    '{"documents":["' .. prefix .. '/bench/d' .. d .. '"]}')
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
