-- One refresh chain per thread (run with -c equal to -t): each request
-- presents the refresh token the previous answer returned.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local next_thread = 1

function setup(thread)
  thread:set("rt", tokens[next_thread])
  next_thread = next_thread + 1
end

function init(args)
  failures = 0
end

function request()
  return wrk.format("POST", "/v1/auth/refresh",
    {["Content-Type"] = "application/json", ["X-Project-Key"] = os.getenv("BENCH_PK")},
    '{"refresh_token":"' .. rt .. '"}')
end

function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if status == 200 and t then
    rt = t
  else
    failures = failures + 1
    io.stderr:write("refresh answered " .. status .. ": " .. body .. "\n")
  end
end
