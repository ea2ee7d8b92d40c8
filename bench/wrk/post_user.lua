-- POST /Users with a userName no earlier request (in this run or any other) has used:
-- a random run suffix from bench/run, the phase (warm-up or measured, so the durability check
-- can count exactly the measured run's users), a random per-thread suffix, the thread number
-- and a counter.
-- Arguments: RUN_SUFFIX (bench/run passes a fresh random hex string per run).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local run_suffix, thread_suffix, counter, path

function init(args)
   run_suffix = (args[1] or "norun") .. "-" .. (os.getenv("BENCH_WRK_PHASE") or "adhoc")
   math.randomseed(os.time() + 1000003 * ((thread_number or 0) + 1))
   thread_suffix = string.format("%06x", math.random(0, 0xffffff))
   counter = 0
   path = scim_root() .. "/Users"
end

function request()
   counter = counter + 1
   local name = string.format("post-%s-%s-t%d-%d", run_suffix, thread_suffix, thread_number or 0, counter)
   local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
      .. '"userName":"' .. name .. '@example.com",'
      .. '"displayName":"Posted ' .. counter .. '",'
      .. '"name":{"givenName":"Posted","familyName":"User' .. counter .. '"},'
      .. '"emails":[{"value":"' .. name .. '@example.com","type":"work","primary":true}],'
      .. '"active":true}'
   return wrk.format("POST", path, nil, body)
end
