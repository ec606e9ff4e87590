-- wrk script for bench/run.py: one scenario per run, chosen by the first script argument.
--
--   wrk -t2 -c16 -d20s -s bench/scenario.lua http://127.0.0.1:PORT -- SCENARIO SEED_FILE NONCE
--
-- SEED_FILE has one line per seeded user: "<access token> <wallet id>". Every request is sent as a
-- random user; money-moving POSTs carry a fresh Idempotency-Key (NONCE keeps keys of separate runs
-- apart) and transfers go to a random other wallet, or to the first seeded wallet in "transfers_hot";
-- "transfers_batch" sends POST /transfers/batch with BATCH_SIZE (fourth argument, default 100)
-- transfers from the caller's wallet to random other wallets; "payments_async" sends the card payment
-- of "payments" with `Prefer: respond-async` (answered 202).
-- The closing line is one JSON object prefixed "BENCH_RESULT ", read by bench/run.py.

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local scenario, nonce
local batch_size = 100
local users = {}
local counter = 0
statuses = {}

function init(args)
  scenario, nonce = args[1], args[3]
  batch_size = tonumber(args[4] or "100")
  for line in io.lines(args[2]) do
    local token, wallet = line:match("^(%S+)%s+(%S+)")
    if token then
      users[#users + 1] = { token = token, wallet = wallet }
    end
  end
  math.randomseed(os.time() * 1000 + id * 7919)
end

local function pick_other(user)
  if scenario == "transfers_hot" then
    return users[1].wallet
  end
  local other = users[math.random(#users)]
  while other.wallet == user.wallet do
    other = users[math.random(#users)]
  end
  return other.wallet
end

-- "mixed" (bench/soak.py): each request is one of the others, weighted like a day's traffic.
local mixed = { "payments_list", "payments_list", "ping", "payments", "transfers", "transfers", "transfers_hot" }

function request()
  if scenario == "mixed" or mixing then
    mixing = true
    scenario = mixed[math.random(#mixed)]
  end
  local user = users[math.random(#users)]
  if scenario == "transfers_hot" then
    while user.wallet == users[1].wallet do
      user = users[math.random(#users)]
    end
  end
  local headers = { ["Authorization"] = "Bearer " .. user.token }
  if scenario == "ping" then
    return wrk.format("GET", "/api/v1/ping", headers)
  elseif scenario == "payments_list" then
    return wrk.format("GET", "/api/v1/payments", headers)
  end
  counter = counter + 1
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format("bench-%s-%d-%d", nonce, id, counter)
  local path, body
  if scenario == "transfers_batch" then
    local items = {}
    for n = 1, batch_size do
      items[n] = string.format(
        '{"source_wallet": "%s", "destination_wallet": "%s", "amount": %d}',
        user.wallet, pick_other(user), math.random(1, 100)
      )
    end
    path = "/api/v1/transfers/batch"
    body = '{"atomic": true, "transfers": [' .. table.concat(items, ", ") .. ']}'
  elseif scenario == "payments" or scenario == "payments_async" then
    if scenario == "payments_async" then
      headers["Prefer"] = "respond-async"
    end
    path = "/api/v1/payments"
    body = string.format(
      '{"amount": %d, "currency": "USD", "payment_method": "tok_visa"}', math.random(100, 50000)
    )
  else
    path = "/api/v1/transfers"
    body = string.format(
      '{"source_wallet": "%s", "destination_wallet": "%s", "amount": %d}',
      user.wallet, pick_other(user), math.random(1, 100)
    )
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local seen = thread:get("statuses")
    for status, count in pairs(seen) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    parts[#parts + 1] = string.format('"%d": %d', status, count)
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "socket_errors": %d, "timeouts": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    errors.connect + errors.read + errors.write, errors.timeout, table.concat(parts, ", ")
  ))
end
