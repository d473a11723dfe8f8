-- /v1/reassignment-checks with 1,000 items per call, bodies built from the sample at start.
local numbers = {}
for line in io.lines(os.getenv("NUMLINK_SAMPLE")) do numbers[#numbers + 1] = line end
local dates = {"2019-09-01", "2021-07-15", "2023-01-01", "2024-06-30", "2025-12-01"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("NUMLINK_KEY")
local bodies = {}
for b = 1, 32 do
  local items = {}
  for j = 1, 1000 do
    items[j] = '{"phoneNumber":"' .. numbers[math.random(#numbers)] .. '","date":"' .. dates[math.random(#dates)] .. '"}'
  end
  bodies[b] = '{"items":[' .. table.concat(items, ",") .. ']}'
end
local i = math.random(#bodies)
request = function()
  i = i + 1
  return wrk.format(nil, "/v1/reassignment-checks", nil, bodies[(i % #bodies) + 1])
end
