-- Durable 10-write batches: each request POSTs /v1/batch setting ten new documents
-- batches/b<thread>-<k>.
local counter = 0
-- Set PREFIX to keep two wrk processes' documents apart.
local prefix = os.getenv("PREFIX") or ""
-- `id` is a global set per thread by setup().
local threads = {}
setup = function(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
init = function()
  counter = 0
end
request = function()
  local writes = {}
  for k = 1, 10 do
    counter = counter + 1
    writes[k] = '{"op":"set","path":"batches/b' .. prefix .. id .. "-" .. counter
      .. '","data":{"owner":"u' .. (counter % 1000) .. '","n":' .. counter
      .. ',"title":"benchmark document"}}'
  end
  return wrk.format("POST", "/v1/batch", {["content-type"] = "application/json"},
    '{"writes":[' .. table.concat(writes, ",") .. ']}')
end
response = function(status)
  if status ~= 200 then error("unexpected status " .. status) end
end
