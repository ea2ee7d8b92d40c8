-- GET /api/2.0/access/check for SELECT on one table, walking through the seeded principals so
-- consecutive requests ask about different users (some allowed through nested groups, some not).
-- Arguments: IDS_FILE TABLE_FULL_NAME. The URL given to wrk is the server's root.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local ids, cursor, query_tail, root

function init(args)
   ids = read_lines(args[1])
   query_tail = "&privilege=SELECT&securable_type=TABLE&full_name=" .. args[2]
   root = (wrk.path:gsub("/+$", ""))
   -- Threads start at different places so they do not ask about the same principal in step.
   cursor = (thread_number or 0) * 7919
end

function request()
   cursor = cursor + 1
   return wrk.format("GET", root .. "/api/2.0/access/check?principal=" .. ids[cursor % #ids + 1] .. query_tail)
end
