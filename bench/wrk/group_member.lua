-- PATCH /Groups/{id} changing one member per request, keeping the group's size constant:
-- requests alternate between adding a user who is not a member and removing that same user
-- again, as Entra ID and Okta send them ({"op":"add"|"remove","path":"members","value":[{...}]}).
-- The group therefore holds its N members plus at most one transient member per connection.
-- Half the measured requests are adds and half are removes; both are what the issue's
-- "membership change on a huge group" means in practice.
-- SUMMARY: each request adds one non-member or removes it again (alternating), so the group keeps its size; half the requests are adds
--
-- The users come from IDS_FILE (bench/run passes the seeded users, who are in neither group).
-- Each wrk thread takes every Nth user, so two threads never change the same user. Scimitar
-- treats adding a present member and removing an absent one as no-ops, so if two connections'
-- requests for one user overtake each other, nothing fails and the size drifts by at most one.
-- Arguments: GROUP_ID IDS_FILE.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local path, users, counter

function init(args)
   path = scim_root() .. "/Groups/" .. args[1]
   users = {}
   local all = read_lines(args[2])
   local threads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
   for index = (thread_number or 0) + 1, #all, threads do
      users[#users + 1] = all[index]
   end
   assert(#users > 0, "no users left for thread " .. tostring(thread_number))
   counter = 0
end

function request()
   local user = users[math.floor(counter / 2) % #users + 1]
   local op = (counter % 2 == 0) and "add" or "remove"
   counter = counter + 1
   local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
      .. '"Operations":[{"op":"' .. op .. '","path":"members","value":[{"value":"' .. user .. '"}]}]}'
   return wrk.format("PATCH", path, nil, body)
end
