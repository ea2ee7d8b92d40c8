-- GET /Users?filter=userName eq "<existing>", walking through the seeded userNames.
-- Arguments: USER_NAME_PREFIX USER_COUNT (names are PREFIX-000000@example.com, as seed.py makes them).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local prefix, count, cursor, root

local function url_encode(text)
   return (text:gsub("[^%w%-%._~]", function(character)
      return string.format("%%%02X", string.byte(character))
   end))
end

function init(args)
   prefix = args[1]
   count = tonumber(args[2])
   root = scim_root()
   cursor = (thread_number or 0) * 7919
end

function request()
   cursor = cursor + 1
   local user_name = string.format("%s-%06d@example.com", prefix, cursor % count)
   local filter = 'userName eq "' .. user_name .. '"'
   return wrk.format("GET", root .. "/Users?filter=" .. url_encode(filter))
end
