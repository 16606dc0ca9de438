-- POST /v1/auth/login with the right password, cycling through the
-- BENCH_USERS accounts bench0@example.com ... (one account at a time per
-- address would meet the lockout's bound on evaluations in flight).
local users = tonumber(os.getenv("BENCH_USERS") or "16")
local pk = os.getenv("BENCH_PK")
local n = 0

function setup(thread)
  thread:set("offset", math.random(0, users - 1))
end

function request()
  n = n + 1
  local i = (n + (offset or 0)) % users
  return wrk.format("POST", "/v1/auth/login",
    {["Content-Type"] = "application/json", ["X-Project-Key"] = pk},
    '{"email":"bench' .. i .. '@example.com","password":"correct horse battery staple"}')
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("login answered " .. status .. ": " .. body .. "\n")
  end
end
