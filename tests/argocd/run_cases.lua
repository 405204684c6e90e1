-- Runs an Argo CD health script against test objects the way Argo CD does (util/lua/lua.go): the object as
-- the global `obj`, the script's returned table read as {status, message}, a status outside the six Argo CD
-- knows turned into Unknown "Lua returned an invalid health status".
--
-- Usage: lua5.1 run_cases.lua cases HEALTH.lua CASES.lua
--          one line per case, "ok      <name>: ..." or "FAILED  <name>: ...", exit 1 if any failed
--        lua5.1 run_cases.lua robustness HEALTH.lua CASES.lua
--          every case object with one field removed at a time (every path, recursively), plus degenerate
--          objects: the script must neither error nor return an invalid status; one line, exit 1 on failure
-- CASES.lua returns { {name = ..., status = ..., message = ..., obj = {...}}, ... } (written by run.sh).
--
-- Like Argo CD for argocd-cm checks (no resource.customizations.useOpenLibs), the script sees only the base
-- and table libraries: no string, math, io or os, and strings have no methods while it runs.

local mode, health_path, cases_path = arg[1], arg[2], arg[3]
if (mode ~= "cases" and mode ~= "robustness") or health_path == nil or cases_path == nil then
  io.stderr:write("usage: lua5.1 run_cases.lua cases|robustness HEALTH.lua CASES.lua\n")
  os.exit(2)
end

local VALID = {
  Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true,
}
local BASE = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal", "rawget",
  "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall", "_VERSION",
}

local function copy_table(t)
  local c = {}
  for k, v in pairs(t) do
    c[k] = v
  end
  return c
end

local function deep_copy(v)
  if type(v) ~= "table" then
    return v
  end
  local c = {}
  for k, x in pairs(v) do
    c[k] = deep_copy(x)
  end
  return c
end

local chunk, load_error = loadfile(health_path)
if chunk == nil then
  io.stderr:write("cannot load " .. health_path .. ": " .. tostring(load_error) .. "\n")
  os.exit(2)
end
local cases_chunk, cases_error = loadfile(cases_path)
if cases_chunk == nil then
  io.stderr:write("cannot load " .. cases_path .. ": " .. tostring(cases_error) .. "\n")
  os.exit(2)
end
local cases = cases_chunk()

local string_mt = getmetatable("")

-- Runs the health script on a fresh environment. Returns status, message, or nil and an error.
local function run_health(object)
  local env = {}
  for _, name in ipairs(BASE) do
    env[name] = _G[name]
  end
  env.table = copy_table(table)
  env._G = env
  env.obj = object
  setfenv(chunk, env)
  local string_index = string_mt.__index
  string_mt.__index = nil
  local ok, result = pcall(chunk)
  string_mt.__index = string_index
  if not ok then
    return nil, "error: " .. tostring(result)
  end
  if type(result) ~= "table" then
    return nil, "error: expect table output from Lua script, not " .. type(result)
  end
  local status, message = result.status, result.message
  if message == nil then
    message = ""
  end
  if type(message) ~= "string" then
    return nil, "error: message is a " .. type(message) .. ", not a string"
  end
  if type(status) ~= "string" or not VALID[status] then
    return "Unknown", "Lua returned an invalid health status"
  end
  return status, message
end

local function quote(s)
  return string.format("%q", s)
end

if mode == "cases" then
  local failed = 0
  for _, case in ipairs(cases) do
    local status, message = run_health(case.obj)
    if status == case.status and message == case.message then
      print(string.format("ok      %s: %s %s", case.name, status, quote(message)))
    else
      failed = failed + 1
      local got
      if status == nil then
        got = message
      else
        got = status .. " " .. quote(message)
      end
      print(string.format("FAILED  %s: expected %s %s, got %s", case.name, tostring(case.status),
        quote(tostring(case.message)), got))
    end
  end
  os.exit(failed == 0 and 0 or 1)
end

-- robustness: every path of every object, removed one at a time.
local function paths(v, prefix, out)
  if type(v) ~= "table" then
    return out
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local p = copy_table(prefix)
    p[#p + 1] = k
    out[#out + 1] = p
    paths(v[k], p, out)
  end
  return out
end

local function without(object, path)
  local c = deep_copy(object)
  local parent = c
  for i = 1, #path - 1 do
    parent = parent[path[i]]
  end
  local last = path[#path]
  if type(last) == "number" and last == math.floor(last) and last >= 1 and last <= #parent then
    table.remove(parent, last) -- a list stays a list, as in JSON
  else
    parent[last] = nil
  end
  return c
end

local function show(path)
  local parts = {}
  for i, k in ipairs(path) do
    if type(k) == "number" then
      parts[i] = "[" .. k .. "]"
    else
      parts[i] = (i > 1 and "." or "") .. k
    end
  end
  return table.concat(parts)
end

local variants = {
  {name = "{}", obj = {}},
  {name = "{status = {}}", obj = {status = {}}},
  {name = "{status = {conditions = {{}}}}", obj = {status = {conditions = {{}}}}},
  {name = "Ready with only a type", obj = {metadata = {generation = 1}, status = {conditions = {{type = "Ready"}}}}},
  {name = "Degraded with only type and status", obj = {status = {conditions = {{type = "Degraded", status = "True"}}}}},
  {name = "paused, Ready with only a reason", obj = {spec = {paused = true}, status = {conditions = {{type = "Ready", reason = "Paused"}}}}},
  {name = "migrate, Ready True only", obj = {spec = {mode = "migrate"}, status = {conditions = {{type = "Ready", status = "True"}}}}},
}
for _, case in ipairs(cases) do
  for _, path in ipairs(paths(case.obj, {}, {})) do
    variants[#variants + 1] = {name = case.name .. " without " .. show(path), obj = without(case.obj, path)}
  end
end

local bad = {}
for _, variant in ipairs(variants) do
  local status, message = run_health(variant.obj)
  if status == nil then
    bad[#bad + 1] = variant.name .. ": " .. message
  elseif status == "Unknown" then
    bad[#bad + 1] = variant.name .. ": " .. status .. " " .. quote(message)
  end
end
if #bad == 0 then
  print(string.format("ok      robustness: %d objects with a field missing, no error and a valid status for each",
    #variants))
  os.exit(0)
end
print(string.format("FAILED  robustness: %d of %d objects with a field missing made the script fail", #bad,
  #variants))
for i = 1, math.min(#bad, 10) do
  print("          " .. bad[i])
end
os.exit(1)
