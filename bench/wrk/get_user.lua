-- GET /Users/{id}, walking through the seeded users so every request reads a different row.
-- Arguments: IDS_FILE.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids, cursor, root

function init(args)
   ids = read_lines(args[1])
   root = scim_root()
   -- Threads start at different places so they do not read the same rows in lockstep.
   cursor = (thread_number or 0) * 7919
end

function request()
   cursor = cursor + 1
   return wrk.format("GET", root .. "/Users/" .. ids[cursor % #ids + 1])
end
