-- Durable single-document writes: each request PUTs a new document w<thread>-<k>.
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
  counter = counter + 1
  local body = '{"owner":"u' .. (counter % 1000) .. '","n":' .. counter .. ',"title":"benchmark document"}'
  return wrk.format("PUT", "/v1/docs/writes/w" .. prefix .. id .. "-" .. counter,
    {["content-type"] = "application/json"}, body)
end
response = function(status)
  if status ~= 200 and status ~= 201 then error("unexpected status " .. status) end
end
