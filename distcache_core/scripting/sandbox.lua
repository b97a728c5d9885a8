-- The sandbox scripts run in, built once per Lua state while the full standard library is
-- still there (distcache_core/scripting/lua.py runs this chunk, then empties the real global
-- table). It returns the privileged functions the Python side calls; scripts never see them.
--
-- What a script gets is Redis 7.0's environment: the globals Redis lists (no os, io, debug,
-- require, loadfile, dofile, package, getfenv, setfenv, print, newproxy), every global and
-- library table read-only ("Attempt to modify a readonly table"), reading an unknown global
-- an error, precompiled bytecode refused, the redis.* API, and the cjson and bit libraries
-- (cjson.lua, bit.lua), struct and cmsgpack (struct.lua, cmsgpack.lua, both on
-- ieee754.lua). Redis makes tables read-only
-- with a patch to the Lua VM; stock Lua 5.1 has no such flag, so here each protected table
-- is an empty proxy whose metatable reads through to the real table and refuses writes, and
-- the few functions that write around metatables (rawset, setmetatable, table.insert,
-- table.remove, table.sort) refuse proxies.
--
-- Arguments: the Python callbacks (they never raise; each returns a status first) and the
-- count-hook period.
local py_call, py_setresp, py_log, py_sha1hex, py_interrupted, py_acl_check, hook_period,
      redis_version, redis_version_num, cjson_chunk, bit_chunk, ieee754_chunk, struct_chunk,
      cmsgpack_chunk = ...

local SANDBOX_SOURCE = debug.getinfo(1, "S").source
local READONLY = "Attempt to modify a readonly table"

-- Private references, named as the originals so that their argument errors read the same
-- ("bad argument #1 to 'rawset'"). Calls to them are never tail calls for that reason too.
local debug_getinfo, debug_sethook = debug.getinfo, debug.sethook
local error, pcall, xpcall, type, tostring, select, unpack =
      error, pcall, xpcall, type, tostring, select, unpack
local next, pairs, rawget, rawset, setmetatable, getmetatable, newproxy =
      next, pairs, rawget, rawset, setmetatable, getmetatable, newproxy
local loadstring, load, setfenv, tonumber, collectgarbage =
      loadstring, load, setfenv, tonumber, collectgarbage
local string_byte, string_sub, string_find, string_format, string_gsub =
      string.byte, string.sub, string.find, string.format, string.gsub
local table_concat = table.concat
local create, resume = coroutine.create, coroutine.resume
local table_insert, table_remove, table_sort = table.insert, table.remove, table.sort

local function pack(...)
  return {n = select("#", ...), ...}
end

-- proxy -> the table it stands for (weak: proxies of a flushed state go away with it).
local hidden = setmetatable({}, {__mode = "k"})

local function refuse_write()
  error(READONLY, 2)
end

-- What getmetatable() shows of a protected table: a read-only table, never the metatable.
local shown_metatable = {}
hidden[shown_metatable] = {}
setmetatable(shown_metatable, {__newindex = refuse_write, __metatable = false})

local function readonly(real)
  local proxy = {}
  hidden[proxy] = real
  setmetatable(proxy, {__index = real, __newindex = refuse_write,
                       __metatable = shown_metatable})
  return proxy
end

local function readonly_copy(source, names)
  local copy = {}
  for _, name in pairs(names) do copy[name] = source[name] end
  return copy
end

-- The globals table scripts see: G behind a proxy. Reading a name G does not have is an error.
local G = {}
local globals = readonly(G)
setmetatable(G, {__index = function(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end})

-- --- the kill switch ---------------------------------------------------------

local killing = false
local KILLED = "ERR Script killed by user with SCRIPT KILL..."

-- The count hook of every thread a script runs (the main one and each coroutine). Once the
-- script is killed, a thread that reaches its hook switches itself to a hook on every line,
-- so pcall cannot swallow the kill (Redis switches its hook to LUA_MASKLINE the same way).
local hook
hook = function()
  if not killing then
    local ok, stop = pcall(py_interrupted)
    if ok and not stop then return end
    killing = true
  end
  debug_sethook(hook, "l")
  -- Only the script's own code is interrupted: the sandbox's (run() after the script, the
  -- conversions) must be allowed to finish.
  local running = debug_getinfo(2, "S")
  if running == nil or running.source ~= SANDBOX_SOURCE then
    error({err = KILLED}, 0)
  end
end

local function sandbox_create(f)
  if type(f) ~= "function" then
    error("bad argument #1 to 'create' (Lua function expected)", 2)
  end
  local co = create(f)
  if killing then debug_sethook(co, hook, "l") else debug_sethook(co, hook, "", hook_period) end
  return co
end

local function sandbox_wrap(f)
  if type(f) ~= "function" then
    error("bad argument #1 to 'wrap' (Lua function expected)", 2)
  end
  local co = sandbox_create(f)
  return function(...)
    local results = pack(resume(co, ...))
    if results[1] then return unpack(results, 2, results.n) end
    local e = results[2]
    -- auxwrap prefixes a string error with where the wrapped function was called from.
    if type(e) == "string" or type(e) == "number" then error(e, 2) end
    error(e, 0)
  end
end

-- --- functions that bypass metatables -----------------------------------------------------
--
-- These wrap C functions. Their argument errors are raised here with level 2, so that they
-- carry the script's position as the C function's own would (luaL_argerror names the caller).

local function bad_argument(n, name, expected, ...)
  local got = select("#", ...) < n and "no value" or type((select(n, ...)))
  return string_format("bad argument #%d to '%s' (%s expected, got %s)", n, name, expected, got)
end

local function sandbox_rawset(...)
  local t, k, v = ...
  if type(t) ~= "table" then error(bad_argument(1, "rawset", "table", ...), 2) end
  if hidden[t] ~= nil then error(READONLY, 0) end
  local result = rawset(t, k, v)
  return result
end

local function sandbox_rawget(...)
  local t, k = ...
  if type(t) ~= "table" then error(bad_argument(1, "rawget", "table", ...), 2) end
  local real = hidden[t]
  if real ~= nil then t = real end
  local value = rawget(t, k)
  return value
end

local function sandbox_next(...)
  local t, k = ...
  if type(t) ~= "table" then error(bad_argument(1, "next", "table", ...), 2) end
  local real = hidden[t]
  if real ~= nil then t = real end
  local key, value = next(t, k)
  return key, value
end

local function sandbox_pairs(...)
  local t = ...
  if type(t) ~= "table" then error(bad_argument(1, "pairs", "table", ...), 2) end
  if hidden[t] ~= nil then return sandbox_next, t, nil end
  local f, state, control = pairs(t)
  return f, state, control
end

local function sandbox_setmetatable(...)
  local t, mt = ...
  if type(t) ~= "table" then error(bad_argument(1, "setmetatable", "table", ...), 2) end
  if mt ~= nil and type(mt) ~= "table" then
    error("bad argument #2 to 'setmetatable' (nil or table expected)", 2)
  end
  if hidden[t] ~= nil then error(READONLY, 0) end
  local result = setmetatable(t, mt)
  return result
end

local function pass(...)
  return ...
end

-- table.insert, table.remove, table.sort write with lua_rawseti.
local function refusing(f, name)
  return function(...)
    local t = ...
    if type(t) ~= "table" then error(bad_argument(1, name, "table", ...), 2) end
    if hidden[t] ~= nil then error(READONLY, 0) end
    return pass(f(...))
  end
end

-- --- loading code: text only, always into the sandbox -------------------------------------

local function load_text(text, chunkname)
  if string_byte(text, 1) == 27 then
    -- Redis's Lua has no undump: bytecode is parsed as text and fails on its first byte.
    -- A leading space gives stock Lua's parser the same input position and message.
    local f, message = loadstring(" " .. text, chunkname or text)
    return f, message
  end
  local f, message = loadstring(text, chunkname)
  if f then setfenv(f, globals) end
  return f, message
end

local function sandbox_loadstring(...)
  local text, chunkname = ...
  if type(text) == "number" then text = tostring(text) end
  if type(text) ~= "string" then error(bad_argument(1, "loadstring", "string", ...), 2) end
  return load_text(text, chunkname)
end

local function sandbox_load(...)
  local reader, chunkname = ...
  if type(reader) ~= "function" then error(bad_argument(1, "load", "function", ...), 2) end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == "" then break end
    if type(piece) ~= "string" then return nil, "reader function must return a string" end
    parts[#parts + 1] = piece
  end
  return load_text(table_concat(parts), chunkname or "=(load)")
end

-- --- pcall and xpcall as Redis 7.0 has them ------------------------------------------------

-- Redis's pcall hands a script the message of an error table ({err = "..."}), not the table.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == "table" then
    local message = e.err
    if type(message) == "string" or type(message) == "number" then e = message end
  end
  return false, e
end

local function sandbox_pcall(f, ...)
  return pcall_result(pcall(f, ...))
end

local function sandbox_xpcall(f, handler)
  -- Once killed, the script's handler is not run: it would run with hooks off.
  local function guarded(e)
    if killing then return e end
    return handler(e)
  end
  return pass(xpcall(f, guarded))
end

-- --- errors ---------------------------------------------------------------------------------

-- Redis's __redis__err__handler: an error becomes {err = "CODE message"} with the source and
-- line of the script code that raised it (C functions and this sandbox are skipped).
local function error_handler(e)
  local level, info = 2, nil
  repeat
    info = debug_getinfo(level, "Sl")
    level = level + 1
  until info == nil or (info.what ~= "C" and info.what ~= "tail"
                        and info.source ~= SANDBOX_SOURCE)
  local result
  if type(e) == "table" then
    local message = rawget(e, "err")
    if type(message) == "number" then message = tostring(message) end
    result = {err = message,
              ignore_error_stats_update = rawget(e, "ignore_error_stats_update")}
  else
    result = {err = "ERR " .. tostring(e)}
  end
  if info then
    result.source = info.source
    result.line = info.currentline
  end
  return result
end

-- luaPushErrorBuff: "-CODE message" keeps its code, anything else gets "ERR ".
local function error_table(buffer)
  local code, message = "ERR", buffer
  if string_sub(buffer, 1, 1) == "-" then
    local space = string_find(buffer, " ", 1, true)
    if space then
      code, message = string_sub(buffer, 2, space - 1), string_sub(buffer, space + 1)
    else
      message = string_sub(buffer, 2)
    end
  end
  message = string_gsub(string_gsub(message, "^[\r\n]+", ""), "[\r\n]+$", "")
  return {err = code .. " " .. message}
end

-- --- the redis.* API -------------------------------------------------------------------------

local INTERNAL = "ERR internal error while running the command (see node log)"

-- Arguments as Redis's luaArgsToRedisArgv takes them: strings, or numbers written "%.17g".
-- Returns the argument count, or nil and an error table.
local function command_args(args, n)
  if n == 0 then
    return nil, error_table("Please specify at least one argument for this redis lib call")
  end
  for i = 1, n do
    local kind = type(args[i])
    if kind == "number" then
      args[i] = string_format("%.17g", args[i])
    elseif kind ~= "string" then
      return nil, error_table("Lua redis lib command arguments must be strings or integers")
    end
  end
  return n
end

local function run_command(n, args)
  local ok, status, value = pcall(py_call, unpack(args, 1, n))
  if not ok then return error_table(INTERNAL), true end
  if status == 0 then return value, false end
  local e = error_table(value)
  e.ignore_error_stats_update = true
  return e, true
end

-- A function that raises must keep its caller's frame, for the error handler to report the
-- script's line: `return redis.call(...)` is a tail call, and in Lua 5.1 a tail call to a Lua
-- function replaces the caller's frame (a C function's does not: Redis's redis.call is C).
-- So each such function is served by a coroutine behind coroutine.wrap's C function, called
-- through a read-only table's __call. An error kills that coroutine; a fresh one is put in
-- place before the error is raised, so nothing that can fail runs outside the pcall.
local wrap, yield = coroutine.wrap, coroutine.yield
-- The most values unpack spreads from serve's frame (LUAI_MAXCSTACK, 8000, less unpack's own
-- three arguments); Redis's C functions fail near there too, past their stack.
local MAX_RESULTS = 7997

local function call_with(f, args)
  if args.n - 1 > MAX_RESULTS then error("too many results to unpack", 0) end
  return f(unpack(args, 2, args.n))  -- args[1] is the table
end

-- The objects c_callable makes: functions, to a library that looks at types (cmsgpack).
local callables = setmetatable({}, {__mode = "k"})

local function c_callable(f)
  local object, meta = {}, {__newindex = refuse_write, __metatable = shown_metatable}
  callables[object] = true
  local serve
  serve = function(...)
    local args = pack(...)
    while true do
      local results = pack(pcall(call_with, f, args))
      if results[1] and results.n - 1 > MAX_RESULTS then
        results = {false, "too many results to unpack"}
      end
      if not results[1] then
        meta.__call = wrap(serve)
        error(results[2], 0)
      end
      args = pack(yield(unpack(results, 2, results.n)))
    end
  end
  meta.__call = wrap(serve)
  hidden[object] = {}
  setmetatable(object, meta)
  return object
end

local redis = {}

function redis.call(...)
  local args = {...}
  local n, problem = command_args(args, select("#", ...))
  if not n then error(problem, 0) end
  local value, failed = run_command(n, args)
  if failed then error(value, 0) end
  return value
end

function redis.pcall(...)
  local args = {...}
  local n, problem = command_args(args, select("#", ...))
  if not n then return problem end
  local value = run_command(n, args)
  return value
end

function redis.error_reply(...)
  local message = ...
  if select("#", ...) ~= 1 or type(message) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  if string_sub(message, 1, 1) ~= "-" then message = "-" .. message end
  return error_table(message)
end

function redis.status_reply(...)
  local text = ...
  if select("#", ...) ~= 1 or type(text) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  return {ok = text}
end

function redis.sha1hex(...)
  if select("#", ...) ~= 1 then error(error_table("wrong number of arguments"), 0) end
  local text = ...
  if type(text) == "number" then text = tostring(text) end
  if type(text) ~= "string" then text = "" end
  local ok, digest = pcall(py_sha1hex, text)
  if not ok then error(error_table(INTERNAL), 0) end
  return digest
end

function redis.log(...)
  local n = select("#", ...)
  if n < 2 then error(error_table("redis.log() requires two arguments or more."), 0) end
  local level = tonumber((...))
  if level == nil then error(error_table("First argument must be a number (log level)."), 0) end
  level = level - level % 1
  if level < 0 or level > 3 then error(error_table("Invalid debug level."), 0) end
  local parts = {}
  for j = 2, n do
    local piece = select(j, ...)
    local kind = type(piece)
    if kind == "string" or kind == "number" then
      if j ~= 2 then parts[#parts + 1] = " " end
      parts[#parts + 1] = tostring(piece)
    end
  end
  pcall(py_log, level, table_concat(parts))
end

function redis.setresp(...)
  if select("#", ...) ~= 1 then error(error_table("redis.setresp() requires one argument."), 0) end
  local resp = tonumber((...))
  if resp ~= 2 and resp ~= 3 then error(error_table("RESP version must be 2 or 3."), 0) end
  pcall(py_setresp, resp)
end

function redis.set_repl(...)
  if select("#", ...) ~= 1 then
    error(error_table("redis.set_repl() requires two arguments."), 0)
  end
  local flags = tonumber((...)) or 0
  if flags < 0 or flags > 3 or flags % 1 ~= 0 then
    error(error_table("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or "
                      .. "REPL_NONE."), 0)
  end
end

function redis.replicate_commands()
  return true
end

function redis.breakpoint()
  return false
end

function redis.debug()
end

function redis.acl_check_cmd(...)
  local args = {...}
  local n, problem = command_args(args, select("#", ...))
  if not n then error(problem, 0) end
  local ok, known = pcall(py_acl_check, args[1])
  if not ok or not known then
    error(error_table("Invalid command passed to redis.acl_check_cmd()"), 0)
  end
  return true
end

for _, name in pairs({"call", "sha1hex", "log", "setresp", "set_repl", "acl_check_cmd"}) do
  redis[name] = c_callable(redis[name])
end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL =
  0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = redis_version, redis_version_num

-- --- cjson (lua-cjson 2.1.0 with Redis's defaults; cjson.lua) --------------------------------

-- cjson.null: Redis's is a NULL light userdata. Here a userdata too (Lua cannot make a
-- light one), printed as that NULL is ("userdata: (nil)"); its metatable, which does the
-- printing, is hidden from getmetatable as a light userdata has none.
local cjson_null = newproxy(true)
getmetatable(cjson_null).__tostring = function() return "userdata: (nil)" end

local function sandbox_getmetatable(...)
  if select("#", ...) == 0 then
    error("bad argument #1 to 'getmetatable' (value expected)", 2)
  end
  local value = ...
  if value == cjson_null then return nil end
  local result = getmetatable(value)
  return result
end

local cjson_encode, cjson_decode = cjson_chunk(cjson_null)
local function constant(...)
  local values = pack(...)
  return function() return unpack(values, 1, values.n) end
end
local cjson = {
  _NAME = "cjson", _VERSION = "2.1.0", null = cjson_null,
  encode = c_callable(cjson_encode), decode = c_callable(cjson_decode),
  -- The settings are lua-cjson's defaults, read-only: one script's choice must not change
  -- what the next one gets.
  encode_max_depth = constant(1000), decode_max_depth = constant(1000),
  encode_number_precision = constant(14), encode_keep_buffer = constant(true),
  encode_invalid_numbers = constant(false), decode_invalid_numbers = constant(true),
  encode_sparse_array = constant(false, 2, 10),
}
function cjson.new()
  return readonly(cjson)
end

-- --- bit (LuaBitOp; bit.lua) ---------------------------------------------------------------

local bit_lib = {}
for name, f in pairs(bit_chunk()) do bit_lib[name] = c_callable(f) end

-- --- struct and cmsgpack (struct.lua, cmsgpack.lua) -------------------------------------------

-- What Redis's Lua would see of a value: the type, and the table behind a read-only proxy.
local function view(value)
  local kind = type(value)
  if kind == "table" then
    if callables[value] then return "function" end
    local real = hidden[value]
    if real ~= nil then return "table", real end
  end
  return kind, value
end

local ieee754 = ieee754_chunk()
local struct_lib, cmsgpack_lib = {}, {}
for name, f in pairs(struct_chunk(ieee754)) do struct_lib[name] = c_callable(f) end
for name, value in pairs(cmsgpack_chunk(ieee754, view)) do
  if type(value) == "function" then value = c_callable(value) end
  cmsgpack_lib[name] = value
end

-- --- the globals -------------------------------------------------------------------------

local string_lib = readonly_copy(string, {"byte", "char", "dump", "find", "format", "gfind",
                                          "gmatch", "gsub", "len", "lower", "match", "rep",
                                          "reverse", "sub", "upper"})
local string_proxy = readonly(string_lib)
-- String methods ("x"):upper() go through the string metatable; scripts get a read-only
-- stand-in instead of the metatable itself.
local string_meta = getmetatable("")
string_meta.__index = string_proxy
string_meta.__metatable = readonly({__index = string_proxy})

local table_lib = readonly_copy(table, {"concat", "foreach", "foreachi", "getn", "maxn",
                                        "setn"})
table_lib.insert = refusing(table_insert, "insert")
table_lib.remove = refusing(table_remove, "remove")
table_lib.sort = refusing(table_sort, "sort")

local coroutine_lib = readonly_copy(coroutine, {"resume", "running", "status", "yield"})
coroutine_lib.create = sandbox_create
coroutine_lib.wrap = sandbox_wrap

G._G = globals
G._VERSION = _VERSION
G.__redis__err__handler = error_handler
G.assert = assert
G.collectgarbage = collectgarbage
G.bit = readonly(bit_lib)
G.cjson = readonly(cjson)
G.cmsgpack = readonly(cmsgpack_lib)
G.coroutine = readonly(coroutine_lib)
G.error = error
G.gcinfo = gcinfo
G.getmetatable = sandbox_getmetatable
G.ipairs = ipairs
G.load = sandbox_load
G.loadstring = sandbox_loadstring
G.math = readonly(readonly_copy(math, {"abs", "acos", "asin", "atan", "atan2", "ceil", "cos",
                                       "cosh", "deg", "exp", "floor", "fmod", "frexp", "huge",
                                       "ldexp", "log", "log10", "max", "min", "mod", "modf",
                                       "pi", "pow", "rad", "random", "randomseed", "sin",
                                       "sinh", "sqrt", "tan", "tanh"}))
G.next = sandbox_next
G.pairs = sandbox_pairs
G.pcall = sandbox_pcall
G.rawequal = rawequal
G.rawget = sandbox_rawget
G.rawset = sandbox_rawset
G.redis = readonly(redis)
G.select = select
G.setmetatable = sandbox_setmetatable
G.string = string_proxy
G.struct = readonly(struct_lib)
G.table = readonly(table_lib)
G.tonumber = tonumber
G.tostring = tostring
G.type = type
G.unpack = unpack
G.xpcall = sandbox_xpcall

-- --- what the Python side calls ----------------------------------------------------------------

-- Compile a script body into a function of the sandbox; nil and the message on a syntax error.
local function compile(body)
  local f, message = load_text(body, "@user_script")
  return f, message
end

-- Lua -> RESP, as luaReplyToRedisReply: the value flattened into tokens for Python (a tag, and
-- a value or an element count). Tables are read raw, arrays stop at the first nil.
local T_BULK, T_NUMBER, T_TRUE, T_NULL, T_STATUS, T_ERROR, T_ARRAY, T_DOUBLE, T_MAP, T_SET,
      T_FALSE, T_VERBATIM = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
local MAX_DEPTH = 200

local function flatten(value, out, depth)
  local kind = type(value)
  local n = #out
  if kind == "string" then
    out[n + 1], out[n + 2] = T_BULK, value
  elseif kind == "number" then
    out[n + 1], out[n + 2] = T_NUMBER, value
  elseif kind == "boolean" then
    out[n + 1] = value and T_TRUE or T_FALSE
  elseif kind ~= "table" or value == cjson_null then
    out[n + 1] = T_NULL
  elseif depth > MAX_DEPTH then
    out[n + 1], out[n + 2] = T_ERROR, "reached lua stack limit"
  else
    local field = rawget(value, "err")
    if type(field) == "string" then
      out[n + 1], out[n + 2] = T_ERROR, field
      return
    end
    field = rawget(value, "ok")
    if type(field) == "string" then
      out[n + 1], out[n + 2] = T_STATUS, field
      return
    end
    field = rawget(value, "double")
    if type(field) == "number" then
      out[n + 1], out[n + 2] = T_DOUBLE, field
      return
    end
    field = rawget(value, "big_number")
    if type(field) == "string" then
      out[n + 1], out[n + 2] = T_BULK, field
      return
    end
    field = rawget(value, "verbatim_string")
    if type(field) == "table" then
      local format, text = rawget(field, "format"), rawget(field, "string")
      if type(format) == "string" and type(text) == "string" then
        out[n + 1], out[n + 2] = T_VERBATIM, text
        return
      end
    end
    field = rawget(value, "map")
    if type(field) == "table" then
      out[n + 1], out[n + 2] = T_MAP, 0
      local count = 0
      for k, v in next, field do
        flatten(k, out, depth + 1)
        flatten(v, out, depth + 1)
        count = count + 1
      end
      out[n + 2] = count
      return
    end
    field = rawget(value, "set")
    if type(field) == "table" then
      out[n + 1], out[n + 2] = T_SET, 0
      local count = 0
      for k in next, field do
        flatten(k, out, depth + 1)
        count = count + 1
      end
      out[n + 2] = count
      return
    end
    out[n + 1], out[n + 2] = T_ARRAY, 0
    local j = 1
    while true do
      local item = rawget(value, j)
      if item == nil then break end
      flatten(item, out, depth + 1)
      j = j + 1
    end
    out[n + 2] = j - 1
  end
end

-- Run a compiled script: ok (true/false), then a tag and a value for a scalar reply, or
-- nil and the token table for an aggregate one. A failed script gives false and the error
-- table's message, source and line.
local function run(f, keys, argv)
  rawset(G, "KEYS", keys)
  rawset(G, "ARGV", argv)
  killing = false
  debug_sethook(hook, "", hook_period)
  local ok, result = xpcall(f, error_handler)
  debug_sethook()
  rawset(G, "KEYS", nil)
  rawset(G, "ARGV", nil)
  -- A script may stop the collector (collectgarbage("stop")); it is not its to keep stopped.
  collectgarbage("restart")
  if not ok then
    if type(result) ~= "table" then return false, tostring(result) end
    return false, result.err, result.source, result.line, result.ignore_error_stats_update
  end
  local kind = type(result)
  if kind == "string" then return true, T_BULK, result end
  if kind == "number" then return true, T_NUMBER, result end
  if kind ~= "table" or result == cjson_null then
    if result == true then return true, T_TRUE end
    if result == false then return true, T_FALSE end
    return true, T_NULL
  end
  local out = {}
  debug_sethook(hook, "", hook_period)
  local converted, problem = pcall(flatten, result, out, 1)
  debug_sethook()
  if not converted then
    if type(problem) == "table" then return false, problem.err end
    return false, "ERR " .. tostring(problem)
  end
  return true, nil, out
end

-- A Lua table of strings, from the Python side's arguments (KEYS, ARGV).
local function array(...)
  return {...}
end

return compile, run, array, error_table, SANDBOX_SOURCE
