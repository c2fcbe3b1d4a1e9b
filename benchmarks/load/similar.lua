-- wrk script: GET /items/<random id>/similar?k=10, ids "demo-000000" .. (N-1) as `itemtower generate` writes them.
-- N comes from the environment (WRK_N_ITEMS); the seed is fixed so two runs ask for the same ids.
local n = tonumber(os.getenv("WRK_N_ITEMS") or "100000")
local k = os.getenv("WRK_K") or "10"
math.randomseed(12345)
request = function()
  return wrk.format("GET", string.format("/items/demo-%06d/similar?k=%s", math.random(0, n - 1), k))
end
