-- POST to a token endpoint with the client-credentials grant (RFC 6749 section 4.4), the
-- client authenticating with HTTP Basic as the Databricks SDK does: each request mints a new
-- access token. wrk is pointed at the token endpoint itself (for example .../oidc/v1/token).
-- Arguments: CLIENT_ID SECRET.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local body = "grant_type=client_credentials&scope=all-apis"
local headers

-- Base64 of a string, for the Basic header (wrk's Lua has no library for it).
local function base64(text)
   local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
   return ((text:gsub(".", function(char)
      local bits, byte = "", char:byte()
      for i = 8, 1, -1 do
         bits = bits .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0")
      end
      return bits
   end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(bits)
      if #bits < 6 then
         return ""
      end
      local value = 0
      for i = 1, 6 do
         value = value + (bits:sub(i, i) == "1" and 2 ^ (6 - i) or 0)
      end
      return alphabet:sub(value + 1, value + 1)
   end) .. ({ "", "==", "=" })[#text % 3 + 1])
end

function init(args)
   headers = {
      ["Authorization"] = "Basic " .. base64(args[1] .. ":" .. args[2]),
      ["Content-Type"] = "application/x-www-form-urlencoded",
   }
end

function request()
   return wrk.format("POST", nil, headers, body)
end
