-- One CAMARA check per request, a number from the sample (90% allocated, 10% not), an institution's key.
local numbers = {}
for line in io.lines(os.getenv("NUMLINK_SAMPLE")) do numbers[#numbers + 1] = line end
local dates = {"2019-09-01", "2021-07-15", "2023-01-01", "2024-06-30", "2025-12-01"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("NUMLINK_KEY")
local i = math.random(#numbers)
request = function()
  i = i + 1
  local n = numbers[(i % #numbers) + 1]
  local d = dates[(i % #dates) + 1]
  return wrk.format(nil, "/number-recycling/v0.2/check", nil,
    '{"phoneNumber":"' .. n .. '","specifiedDate":"' .. d .. '"}')
end
-- Paced (NUMLINK_DELAY_MS): each connection waits a random time with that mean before its next request,
-- exponentially distributed, so that the connections' requests form a Poisson stream. A fixed wait keeps
-- the connections in step: every few milliseconds all of them send at once, and the p99 measures how
-- long the last of a burst waits behind the others (a bare handler's p99 was 5 ms that way at a sixth of
-- its peak, 1.1 ms with these waits).
local pace = tonumber(os.getenv("NUMLINK_DELAY_MS") or "")
if pace then
  delay = function() return math.floor(-pace * math.log(1 - math.random()) + 0.5) end
end
