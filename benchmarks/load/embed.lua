-- wrk script: POST /embed with one item per request, the title varying so no two bodies are the same.
math.randomseed(12345)
local words = {"black", "white", "wool", "cotton", "jacket", "coat", "pants", "shirt", "summer", "winter", "knit"}
request = function()
  local t = {}
  for i = 1, 5 do t[i] = words[math.random(1, #words)] end
  local body = string.format('{"items": [{"title": "%s", "std": {"category": "02top_02t-shirt"}}]}', table.concat(t, " "))
  return wrk.format("POST", "/embed", {["Content-Type"] = "application/json"}, body)
end
