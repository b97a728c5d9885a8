"""Attempts to break out of the Lua sandbox, as an attacker with EVAL would make them.

The sandbox must hold: no file, process or module access; no Python object reachable from a
script (lupa wraps Python objects as userdata, so none may be found anywhere); no bytecode;
nothing a script does may change what the next script sees; no allocation or recursion may
take the node down. Each test runs real scripts on a real node.
"""

from __future__ import annotations

import pytest
import redis

from distcache_core.scripting.lua import LuaSandbox


@pytest.fixture
def node(make_node):
    # Some attacks below take seconds of Lua time on a loaded machine: no -BUSY meanwhile.
    return make_node("node.lua_time_limit_ms=0")


def run(r: redis.Redis, script: str, *args: object) -> object:
    return r.eval(script, 0, *args)


def fails(r: redis.Redis, script: str) -> str:
    with pytest.raises(redis.ResponseError) as info:
        r.eval(script, 0)
    return str(info.value)


# --- no way out to the machine -----------------------------------------------------------------

ABSENT = ["os", "io", "debug", "require", "dofile", "loadfile", "package", "module",
          "getfenv", "setfenv", "newproxy", "print", "python", "jit", "ffi", "load_file",
          "collectgarbage_stop"]


@pytest.mark.parametrize("name", ABSENT)
def test_dangerous_globals_do_not_exist(r, name):
    message = fails(r, f"return {name}")
    assert f"Script attempted to access nonexistent global variable '{name}'" in message
    assert run(r, f"return rawget(_G, '{name}') == nil") == 1


@pytest.mark.parametrize("script", [
    "return os.execute('touch /tmp/pwned')",
    "return io.open('/etc/passwd'):read('*a')",
    "return require('os')",
    "return dofile('/etc/passwd')",
    "return loadfile('/etc/passwd')",
    "return package.loadlib('libc.so.6', 'system')",
    "return debug.getregistry()",
    "return getfenv(0).os",
    "return python.eval('__import__(\"os\").system(\"id\")')",
    "return python.builtins.open('/etc/passwd').read()",
])
def test_classic_escapes_fail(r, script):
    fails(r, script)


def test_loaded_code_runs_in_the_sandbox_too(r):
    assert "nonexistent global variable 'os'" in fails(r, "return loadstring('return os')()")
    assert "nonexistent global variable 'io'" in fails(
        r, "local parts = {'return io'} local i = 0 "
           "return load(function() i = i + 1 return parts[i] end)()")
    assert "nonexistent global variable 'os'" in fails(
        r, "return coroutine.wrap(function() return os end)()")
    assert b"nonexistent global variable 'os'" in run(
        r, "local ok, e = pcall(function() return os end) return e")


def test_bytecode_is_refused(r):
    # string.dump exists (as in Redis), but nothing loads what it produces.
    assert run(r, "return type(string.dump(function() return 1 end))") == b"string"
    assert "unexpected symbol near 'char(27)'" in run(
        r, "return select(2, loadstring(string.dump(function() return 1 end)))").decode()
    assert "unexpected symbol" in run(
        r, "local code = string.dump(function() return 1 end) local done = false "
           "return select(2, load(function() if done then return nil end done = true "
           "return code end))").decode()
    assert "unexpected symbol" in fails(r, "\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00")
    # A chunk that is bytecode after a first piece of text: still parsed as text.
    assert "unexpected symbol" in run(
        r, "local pieces = {' ', string.dump(function() end)} local i = 0 "
           "return select(2, load(function() i = i + 1 return pieces[i] end))").decode()


# --- no Python object is reachable -----------------------------------------------------------

WALK = """
local seen, queue, kinds = {}, {_G, ''}, {}
local function visit(v)
  if v == nil then return end
  local t = type(v)
  if v == cjson.null then t = 'cjson.null' end
  kinds[t] = true
  if (t == 'table' or t == 'function' or t == 'userdata' or t == 'thread')
      and not seen[v] then
    seen[v] = true
    queue[#queue + 1] = v
  end
end
visit(getmetatable(''))
local i = 1
while queue[i] ~= nil do
  local v = queue[i]
  i = i + 1
  visit(getmetatable(v))
  if type(v) == 'table' then
    for k, x in pairs(v) do visit(k) visit(x) end
    local meta = getmetatable(v)
    if type(meta) == 'table' then
      for k, x in pairs(meta) do visit(k) visit(x) end
    end
  end
  -- What a call hands back, for every function reachable: errors included.
  if type(v) == 'function' then
    local results = {pcall(v)}
    for _, x in pairs(results) do visit(x) end
    results = {pcall(v, {})}
    for _, x in pairs(results) do visit(x) end
  end
end
local out = {}
for kind in pairs(kinds) do out[#out + 1] = kind end
table.sort(out)
return out
"""


def test_no_userdata_anywhere_in_reach(r):
    """Everything reachable from the globals, metatables, and what every function returns or
    raises when called with no or odd arguments: never a userdata (a Python object) but
    cjson.null, Redis's NULL light userdata, whose metatable stays out of reach."""
    kinds = run(r, WALK)
    assert b"userdata" not in kinds
    assert b"table" in kinds and b"function" in kinds and b"cjson.null" in kinds
    assert run(r, "return getmetatable(cjson.null) == nil") == 1


def test_struct_and_cmsgpack_hand_back_only_plain_values(r):
    """What the libraries return is strings, numbers, booleans and fresh tables: packing a
    library table or a callable reads it without handing anything of it back, and what
    unpacking builds is the script's own (changing it changes no library)."""
    assert run(r, "local t = cmsgpack.unpack(cmsgpack.pack(_G)) t.string.upper = nil "
                  "return type(t.redis) == 'table' and t.redis.call == nil and "
                  "string.upper('a') == 'A' and type(t.cjson.null) == 'nil'") == 1
    assert run(r, "local t = {cmsgpack.unpack(cmsgpack.pack(redis.call, cjson.null, "
                  "coroutine.create(function() end), {struct.pack}))} return {type(t[1]), "
                  "type(t[2]), type(t[3]), type(t[4]), #t[4]}") == [
        b"nil", b"nil", b"nil", b"table", 0]
    assert run(r, "return {struct.unpack('bc0s', '\\3abcxyz\\0')}") == [b"abc", b"xyz", 9]
    assert r.ping()


def test_redis_call_and_its_errors_are_not_python_objects(r):
    assert run(r, "return type(redis.call)") == b"table"  # callable, read-only
    assert run(r, "return getmetatable(redis.call).__call == nil") == 1
    assert run(r, "local ok, e = pcall(redis.call) return type(e)") == b"string"
    assert run(r, "local ok, e = pcall(redis.call, 'nosuch') return type(e)") == b"string"
    assert run(r, "local ok, e = xpcall(function() redis.call('nosuch') end, "
                  "function(e) return type(e) end) return e") == b"table"
    assert run(r, "local co = coroutine.create(function() redis.call('nosuch') end) "
                  "local ok, e = coroutine.resume(co) return type(e)") == b"table"


def test_the_real_global_table_is_empty():
    sandbox = LuaSandbox()
    assert list(sandbox._runtime.globals()) == []


# --- nothing a script does outlives it --------------------------------------------------------

POLLUTERS = [
    "_G.x = 1", "x = 1", "rawset(_G, 'x', 1)", "string.upper = nil", "string.evil = 1",
    "getmetatable('').__index = {}", "getmetatable('').__index.upper = nil",
    "rawset(getmetatable(''), '__index', {})", "setmetatable(_G, {})",
    "table.insert(_G, 'x')", "table.insert(string, 'x')", "table.sort(table)",
    "redis.call = nil", "rawset(redis, 'call', nil)", "redis.call.x = 1",
    "rawset(redis.call, 'x', 1)", "setmetatable(redis.call, {})", "math.floor = nil",
    "coroutine.create = nil", "rawset(getmetatable(_G), '__index', {})",
    "getmetatable(_G).__newindex = nil", "rawset(coroutine, 'create', print)",
    "rawset(rawget(_G, 'string'), 'rep', nil)", "pairs(_G)({}, nil)",
    "local n, t = next(_G) rawset(t, 'x', 1)", "cjson.encode = nil", "cjson.null.x = 1",
    "rawset(cjson.null, 'x', 1)", "cjson.new().encode = nil", "struct.pack = nil",
    "rawset(struct, 'pack', print)", "cmsgpack.unpack = nil", "cmsgpack._VERSION = 'x'",
    "getmetatable(cjson.null).__tostring = nil", "setmetatable(cjson.null, {})",
]


@pytest.mark.parametrize("polluter", POLLUTERS)
def test_scripts_cannot_change_what_later_scripts_see(r, polluter):
    try:
        r.eval(polluter, 0)
    except redis.ResponseError:
        pass
    assert run(r, "return rawget(_G, 'x') == nil and string.upper('a') == 'A' and "
                  "('b'):upper() == 'B' and string.evil == nil and "
                  "type(redis.call) == 'table' and rawget(redis.call, 'x') == nil and "
                  "math.floor(1.5) == 1 and type(coroutine.create) == 'function' and "
                  "#string.rep('x', 3) == 3 and table.sort ~= nil and "
                  "cjson.encode({1}) == '[1]' and tostring(cjson.null) == 'userdata: (nil)' and "
                  "struct.pack('b', 1) == '\\1' and cmsgpack.unpack('\\1') == 1 and "
                  "cmsgpack._VERSION == 'lua-cmsgpack 0.4.0'") == 1
    assert r.eval("return redis.call('PING')", 0) == b"PONG"


def test_keys_and_argv_do_not_persist(r):
    r.eval("KEYS[2] = 'stale' ARGV[5] = 'stale'", 1, "k")
    assert run(r, "return {#KEYS, #ARGV}") == [0, 0]


def test_a_stopped_collector_is_restarted(r):
    run(r, "collectgarbage('stop')")
    # A later script churns through more than the Lua heap limit: the collector must run.
    # 130 rounds leave 2 GiB of garbage: more than the 1 GiB Lua heap unless collected.
    assert run(r, "for i = 1, 130 do local s = 'x' for j = 1, 23 do s = s .. s end end "
                  "return 1") == 1


# --- no script takes the node down ------------------------------------------------------------


def test_huge_allocations_fail_inside_the_script(r):
    message = run(r, "local ok, e = pcall(function() local t = {} "
                     "for i = 1, 2^40 do t[i] = i end end) return e")
    assert b"not enough memory" in message
    message = fails(r, "local s = 'x' while true do s = s .. s end")
    assert "not enough memory" in message
    assert r.ping()
    assert run(r, "return #string.rep('x', 1000)") == 1000


def test_deep_recursion_fails_inside_the_script(r):
    assert "stack overflow" in fails(r, "local function f() return 1 + f() end return f()")
    # Recursion through pcall (a C function) hits the C stack limit, which Lua reports.
    assert b"stack overflow" in run(
        r, "local function f() local ok, e = pcall(f) if not ok then error(e, 0) end end "
           "local ok, e = pcall(f) return e")
    assert "too many results to unpack" in fails(r, "return unpack({}, 1, 1e8)")
    assert "invalid format" in fails(r, "return string.format('%99999999999d', 1)")
    assert r.ping()


def test_deeply_nested_replies_are_cut(r):
    reply = run(r, "local t = {} t[1] = t return t")  # a table holding itself
    depth = 0
    while isinstance(reply, list):
        reply, depth = reply[0], depth + 1
    assert isinstance(reply, redis.ResponseError) and "reached lua stack limit" in str(reply)
    assert 100 <= depth <= 1000
    assert r.ping()


def test_metamethods_cannot_run_at_conversion_time(r):
    # Replies are read raw: a __index that loops is never called.
    assert run(r, "return setmetatable({}, {__index = function() while true do end end})") == []
    assert run(r, "return setmetatable({err = nil}, {__index = function() return 'x' end})") == []
