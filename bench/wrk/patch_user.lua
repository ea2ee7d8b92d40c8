-- PATCH /Users/{id} replacing `active`, walking through the seeded users. Each pass over the
-- users flips the value, so every request really changes the stored user.
-- Arguments: IDS_FILE.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids, cursor, root

function init(args)
   ids = read_lines(args[1])
   root = scim_root()
   cursor = (thread_number or 0) * 7919
end

function request()
   cursor = cursor + 1
   local pass = math.floor(cursor / #ids)
   local active = (pass % 2 == 0) and "false" or "true"
   local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
      .. '"Operations":[{"op":"replace","path":"active","value":' .. active .. '}]}'
   return wrk.format("PATCH", root .. "/Users/" .. ids[cursor % #ids + 1], nil, body)
end
