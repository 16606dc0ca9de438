-- A sign-in with the right password, cycling through the accounts of
-- BENCH_LIST ("publishable-key email" per line; "-" sends no project key,
-- for better-auth), each thread starting at its own place (one account at a
-- time per address would meet the lockout's bound on evaluations in
-- flight). BENCH_LOGIN_PATH: /v1/auth/login unless set.
local list = {}
for line in io.lines(os.getenv("BENCH_LIST")) do
  local pk, email = line:match("(%S+) (%S+)")
  list[#list + 1] = {pk, email}
end
local path = os.getenv("BENCH_LOGIN_PATH") or "/v1/auth/login"
local n = 0

function setup(thread)
  thread:set("offset", math.random(0, #list - 1))
end

function request()
  n = n + 1
  local e = list[(n + (offset or 0)) % #list + 1]
  local headers = {["Content-Type"] = "application/json"}
  if e[1] ~= "-" then headers["X-Project-Key"] = e[1] end
  return wrk.format("POST", path, headers,
    '{"email":"' .. e[2] .. '","password":"correct horse battery staple"}')
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write(path .. " answered " .. status .. ": " .. body .. "\n")
  end
end
