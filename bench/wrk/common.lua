-- Shared helpers for the bench/run wrk scripts: numbering wrk's threads and reading id files.
-- wrk gives every thread its own Lua state, so counters and cursors below are per thread;
-- `setup` runs once per thread in the main state and hands each one a distinct number.

local next_thread_number = 0

function setup(thread)
   thread:set("thread_number", next_thread_number)
   next_thread_number = next_thread_number + 1
end

-- Reads one id per line; the file is written by bench/seed.py.
function read_lines(path)
   local lines = {}
   local file = assert(io.open(path, "r"), "cannot open " .. tostring(path))
   for line in file:lines() do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   file:close()
   assert(#lines > 0, path .. " holds no ids")
   return lines
end

-- The SCIM root path of the target URL (for example /scim/v2 or /v2), so one script serves
-- both servers: wrk is pointed at the root and the scripts append the resource paths.
function scim_root()
   return (wrk.path:gsub("/+$", ""))
end
