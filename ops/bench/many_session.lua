-- GET /v1/auth/session, cycling through the sessions of BENCH_LIST
-- ("publishable-key access-token" per line): every request names its own
-- project and session, as traffic spread over many projects would.
local list = {}
for line in io.lines(os.getenv("BENCH_LIST")) do
  local pk, token = line:match("(%S+) (%S+)")
  list[#list + 1] = {pk, "Bearer " .. token}
end
local n = 0

function setup(thread)
  thread:set("offset", math.random(0, #list - 1))
end

function request()
  n = n + 1
  local e = list[(n + (offset or 0)) % #list + 1]
  return wrk.format("GET", "/v1/auth/session", {["X-Project-Key"] = e[1], ["Authorization"] = e[2]})
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("session check answered " .. status .. ": " .. body .. "\n")
  end
end
