-- The two-node run's mixed load: each request is, at random, a GET /Users/{id} of a seeded user
-- (40%), a GET /Users?filter=userName eq "<seeded>" (40%), a PATCH /Users/{id} replacing
-- `active` of a seeded user (10%), or a POST /Users with a userName nobody else uses (10%).
-- bench/run points one wrk with this script at each node, at the same time, so both nodes read
-- and write the same users and each follows the other's writes through the access log.
-- SUMMARY: each request picks at random: 40% GET /Users/{id}, 40% GET /Users?filter=userName eq, 10% PATCH /Users/{id} replace active, 10% POST /Users
--
-- Arguments: IDS_FILE USER_NAME_PREFIX USER_COUNT RUN_SUFFIX NODE_LABEL. When the environment
-- variable BENCH_WRK_QUANTILES names a file, done() writes the latency distribution there
-- ("percentile microseconds", every 0.1%) so bench/report.py can merge the two nodes' runs.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local GET_SHARE, FILTER_SHARE, PATCH_SHARE = 40, 40, 10 -- POST takes the rest of 100

local ids, prefix, count, root, name_stem, counter

local function url_encode(text)
   return (text:gsub("[^%w%-%._~]", function(character)
      return string.format("%%%02X", string.byte(character))
   end))
end

function init(args)
   ids = read_lines(args[1])
   prefix = args[2]
   count = tonumber(args[3])
   root = scim_root()
   math.randomseed(os.time() + 1000003 * ((thread_number or 0) + 1) + string.byte(args[5] or "x"))
   -- Node, phase, a random per-thread suffix and the thread number keep POSTed names unique
   -- across both nodes, both phases and reruns.
   name_stem = string.format("mixed-%s-%s-%s-%06x-t%d", args[4] or "norun", args[5] or "node",
      os.getenv("BENCH_WRK_PHASE") or "adhoc", math.random(0, 0xffffff), thread_number or 0)
   counter = 0
end

function request()
   counter = counter + 1
   local pick = math.random(1, 100)
   if pick <= GET_SHARE then
      return wrk.format("GET", root .. "/Users/" .. ids[math.random(1, #ids)])
   elseif pick <= GET_SHARE + FILTER_SHARE then
      local user_name = string.format("%s-%06d@example.com", prefix, math.random(0, count - 1))
      return wrk.format("GET", root .. "/Users?filter=" .. url_encode('userName eq "' .. user_name .. '"'))
   elseif pick <= GET_SHARE + FILTER_SHARE + PATCH_SHARE then
      local active = (math.random(0, 1) == 0) and "false" or "true"
      local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
         .. '"Operations":[{"op":"replace","path":"active","value":' .. active .. '}]}'
      return wrk.format("PATCH", root .. "/Users/" .. ids[math.random(1, #ids)], nil, body)
   else
      local name = name_stem .. "-" .. counter
      local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
         .. '"userName":"' .. name .. '@example.com",'
         .. '"displayName":"Mixed ' .. counter .. '",'
         .. '"emails":[{"value":"' .. name .. '@example.com","type":"work","primary":true}],'
         .. '"active":true}'
      return wrk.format("POST", root .. "/Users", nil, body)
   end
end

function done(summary, latency, requests)
   local path = os.getenv("BENCH_WRK_QUANTILES")
   if not path or path == "" then
      return
   end
   local file = assert(io.open(path, "w"))
   file:write(string.format("# requests %d\n", summary.requests))
   for tenth = 1, 1000 do
      file:write(string.format("%.1f %d\n", tenth / 10, latency:percentile(tenth / 10)))
   end
   file:close()
end
