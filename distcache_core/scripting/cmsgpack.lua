-- cmsgpack for scripts: lua-cmsgpack 0.4.0 (Salvatore Sanfilippo's MessagePack for Lua) as
-- Redis 7.0's Lua has it, written in Lua 5.1 arithmetic: the same bytes out of pack, the same
-- values and errors out of unpack, unpack_one and unpack_limit (checked against redis-server
-- in tests/e2e/redis_corpus/scripting.py). Errors are raised without a position: the sandbox
-- serves these functions from C (coroutine.wrap), which adds it as luaL_error does; the ones
-- the Lua VM raises itself in Redis ("table index is nil") carry none and are error tables.
--
-- Arguments: the ieee754 helpers, and view(v): the type Redis's Lua would see and the table
-- itself for a read-only proxy of the sandbox (a library table, a callable).
local ieee, view = ...

local type, tonumber, tostring, select, error, next, rawget, rawset, unpack =
      type, tonumber, tostring, select, error, next, rawget, rawset, unpack
local floor, ceil, huge = math.floor, math.ceil, math.huge
local byte, char, sub, format = string.byte, string.char, string.sub, string.format
local concat = table.concat
local to_float, float_bytes, double_bytes = ieee.to_float, ieee.float_bytes, ieee.double_bytes
local float_from, double_from, integer_bytes = ieee.float_from, ieee.double_from,
      ieee.integer_bytes

local MAX_NESTING = 16
local INT_MAX, TWO32, TWO63 = 2147483647, 4294967296, 9223372036854775808
-- The Lua C stack a C function may fill (LUAI_MAXCSTACK); lua-cmsgpack's decoder checks it
-- for every value it pushes.
local MAXCSTACK = 8000
-- The most values the sandbox can return from a library function (sandbox.lua's MAX_RESULTS);
-- Redis's limit is a value or two higher, and past it the error is this one.
local MAX_RESULTS = 7997
local TOO_MANY = "stack overflow (too many return values at once; use unpack_one or "
                 .. "unpack_limit instead.)"

local function type_error(name, n, expected, ...)
  local got = select("#", ...) < n and "no value" or type((select(n, ...)))
  error(format("bad argument #%d to '%s' (%s expected, got %s)", n, name, expected, got), 0)
end

-- --- encoding ----------------------------------------------------------------------------------

local function encode_bytes(s, out)
  local len = #s
  if len < 32 then
    out[#out + 1] = char(0xa0 + len)
  elseif len <= 0xff then
    out[#out + 1] = char(0xd9, len)
  elseif len <= 0xffff then
    out[#out + 1] = "\218" .. integer_bytes(len, 2)
  else
    out[#out + 1] = "\219" .. integer_bytes(len % TWO32, 4)
  end
  out[#out + 1] = s
end

-- Two's complement of a negative integer in `count` bytes.
local function negative_bytes(n, count)
  if count < 8 then return integer_bytes(2 ^ (8 * count) + n, count) end
  -- 2^64 + n is not exact in a double: the low and high halves apart.
  local magnitude = -n
  local low = magnitude % TWO32
  local high = (magnitude - low) / TWO32
  if low == 0 then return integer_bytes((TWO32 - high) % TWO32, 4) .. integer_bytes(0, 4) end
  return integer_bytes(TWO32 - 1 - high, 4) .. integer_bytes(TWO32 - low, 4)
end

-- Eight big-endian bytes of a nonnegative integer below 2^63.
local function uint64_bytes(n)
  local low = n % TWO32
  return integer_bytes((n - low) / TWO32, 4) .. integer_bytes(low, 4)
end

local function encode_int(n, out)
  if n >= 0 then
    if n <= 127 then out[#out + 1] = char(n)
    elseif n <= 0xff then out[#out + 1] = char(0xcc, n)
    elseif n <= 0xffff then out[#out + 1] = "\205" .. integer_bytes(n, 2)
    elseif n <= 0xffffffff then out[#out + 1] = "\206" .. integer_bytes(n, 4)
    else out[#out + 1] = "\207" .. uint64_bytes(n) end
  else
    if n >= -32 then out[#out + 1] = char(256 + n)
    elseif n >= -128 then out[#out + 1] = char(0xd0, 256 + n)
    elseif n >= -32768 then out[#out + 1] = "\209" .. negative_bytes(n, 2)
    elseif n >= -2147483648 then out[#out + 1] = "\210" .. negative_bytes(n, 4)
    else out[#out + 1] = "\211" .. negative_bytes(n, 8) end
  end
end

local function encode_number(n, out)
  -- IS_INT64_EQUIVALENT: (int64_t)n == n, and x86 makes anything out of range INT64_MIN.
  if n == n and n >= -TWO63 and n < TWO63 and floor(n) == n then
    encode_int(n, out)
  elseif to_float(n) == n then
    out[#out + 1] = "\202" .. float_bytes(n)
  else
    out[#out + 1] = "\203" .. double_bytes(n)
  end
end

-- table_is_an_array: keys exactly 1..n, each a number that fits a C int.
local function is_array(t)
  local count, max = 0, 0
  for k in next, t do
    if type(k) ~= "number" or k <= 0 or k > INT_MAX or floor(k) ~= k then return false end
    if k > max then max = k end
    count = count + 1
  end
  return max == count
end

local function header(small, base16, base32, n, out)
  if n <= 15 then out[#out + 1] = char(small + n)
  elseif n <= 65535 then out[#out + 1] = base16 .. integer_bytes(n, 2)
  else out[#out + 1] = base32 .. integer_bytes(n % TWO32, 4) end
end

local encode

local function encode_table(t, level, out)
  if is_array(t) then
    local len = #t
    header(0x90, "\220", "\221", len, out)
    for j = 1, len do encode(rawget(t, j), level + 1, out) end
  else
    local count = 0
    for _ in next, t do count = count + 1 end
    header(0x80, "\222", "\223", count, out)
    for k, v in next, t do
      encode(k, level + 1, out)
      encode(v, level + 1, out)
    end
  end
end

encode = function(value, level, out)
  local kind, real = view(value)
  if kind == "table" and level == MAX_NESTING then kind = "nil" end
  if kind == "string" then encode_bytes(value, out)
  elseif kind == "boolean" then out[#out + 1] = value and "\195" or "\194"
  elseif kind == "number" then encode_number(value, out)
  elseif kind == "table" then encode_table(real, level, out)
  else out[#out + 1] = "\192" end
end

-- --- decoding ----------------------------------------------------------------------------------

local EOF, BADFMT = 1, 2

-- A decoder over s from offset (0-based); slots counts the C stack lua-cmsgpack would fill.
local function decoder(s, offset, slots)
  local self = {s = s, at = offset + 1, left = #s - offset, err = nil, slots = slots}
  return self
end

local function need(c, n)
  if c.left < n then c.err = EOF return false end
  return true
end

local function consume(c, n)
  c.at, c.left = c.at + n, c.left - n
end

local function check_stack(c, extra, message)
  if c.slots + extra > MAXCSTACK then error(message, 0) end
end

local function uint_at(c, offset, count)
  local value = 0
  for i = 0, count - 1 do value = value * 256 + byte(c.s, c.at + offset + i) end
  return value
end

-- A 64-bit two's complement value: what (lua_Number) of an int64_t gives.
local function int64_at(c, offset)
  local high, low = uint_at(c, offset, 4), uint_at(c, offset + 4, 4)
  if high < 2147483648 then return high * TWO32 + low end
  if low == 0 then return -((TWO32 - high) * TWO32) end
  return -((TWO32 - 1 - high) * TWO32 + (TWO32 - low))
end

local decode

local function settable(t, k, v)
  if k == nil then error({err = "ERR table index is nil"}, 0) end
  if k ~= k then error({err = "ERR table index is NaN"}, 0) end
  rawset(t, k, v)
end

local function decode_array(c, len)
  local t = {}
  c.slots = c.slots + 1
  check_stack(c, 1, "stack overflow (in function mp_decode_to_lua_array)")
  for index = 1, len do
    c.slots = c.slots + 1
    local value = decode(c)
    c.slots = c.slots - 1
    if c.err then return t end
    settable(t, index, value)
  end
  c.slots = c.slots - 1
  return t
end

local function decode_map(c, len)
  local t = {}
  c.slots = c.slots + 1
  for _ = 1, len do
    local key = decode(c)
    if c.err then return t end
    c.slots = c.slots + 1
    local value = decode(c)
    c.slots = c.slots - 1
    if c.err then return t end
    settable(t, key, value)
  end
  c.slots = c.slots - 1
  return t
end

local function decode_string(c, header_len, len)
  if not need(c, header_len + len) then return end
  local value = sub(c.s, c.at + header_len, c.at + header_len + len - 1)
  consume(c, header_len + len)
  return value
end

decode = function(c)
  if not need(c, 1) then return end
  check_stack(c, 1, TOO_MANY)
  local b = byte(c.s, c.at)
  if b == 0xcc then
    if not need(c, 2) then return end
    local v = byte(c.s, c.at + 1) consume(c, 2) return v
  elseif b == 0xd0 then
    if not need(c, 2) then return end
    local v = byte(c.s, c.at + 1) consume(c, 2)
    return v >= 128 and v - 256 or v
  elseif b == 0xcd then
    if not need(c, 3) then return end
    local v = uint_at(c, 1, 2) consume(c, 3) return v
  elseif b == 0xd1 then
    if not need(c, 3) then return end
    local v = uint_at(c, 1, 2) consume(c, 3)
    return v >= 32768 and v - 65536 or v
  elseif b == 0xce then
    if not need(c, 5) then return end
    local v = uint_at(c, 1, 4) consume(c, 5) return v
  elseif b == 0xd2 then
    if not need(c, 5) then return end
    local v = uint_at(c, 1, 4) consume(c, 5)
    return v >= 2147483648 and v - TWO32 or v
  elseif b == 0xcf or b == 0xd3 then
    -- uint 64 goes through lua_pushinteger too: past 2^63 it reads as negative.
    if not need(c, 9) then return end
    local v = int64_at(c, 1) consume(c, 9) return v
  elseif b == 0xc0 then
    consume(c, 1) return nil
  elseif b == 0xc3 then
    consume(c, 1) return true
  elseif b == 0xc2 then
    consume(c, 1) return false
  elseif b == 0xca then
    if not need(c, 5) then return end
    local v = float_from(c.s, c.at + 1) consume(c, 5) return v
  elseif b == 0xcb then
    if not need(c, 9) then return end
    local v = double_from(c.s, c.at + 1) consume(c, 9) return v
  elseif b == 0xd9 then
    if not need(c, 2) then return end
    return decode_string(c, 2, byte(c.s, c.at + 1))
  elseif b == 0xda then
    if not need(c, 3) then return end
    return decode_string(c, 3, uint_at(c, 1, 2))
  elseif b == 0xdb then
    if not need(c, 5) then return end
    local len = uint_at(c, 1, 4)
    consume(c, 5)
    return decode_string(c, 0, len)
  elseif b == 0xdc or b == 0xde then
    if not need(c, 3) then return end
    local len = uint_at(c, 1, 2)
    consume(c, 3)
    if b == 0xdc then return decode_array(c, len) end
    return decode_map(c, len)
  elseif b == 0xdd or b == 0xdf then
    if not need(c, 5) then return end
    local len = uint_at(c, 1, 4)
    consume(c, 5)
    if b == 0xdd then return decode_array(c, len) end
    return decode_map(c, len)
  elseif b < 0x80 then
    consume(c, 1) return b
  elseif b >= 0xe0 then
    consume(c, 1) return b - 256
  elseif b >= 0xa0 and b < 0xc0 then
    return decode_string(c, 1, b - 0xa0)
  elseif b >= 0x90 and b < 0xa0 then
    consume(c, 1)
    return decode_array(c, b - 0x90)
  elseif b >= 0x80 and b < 0x90 then
    consume(c, 1)
    return decode_map(c, b - 0x80)
  end
  c.err = BADFMT
end

-- (int) of a 64-bit integer, as the %d of lua_pushfstring gets it.
local function to_int(n)
  return (n + 2147483648) % TWO32 - 2147483648
end

-- mp_unpack_full: `slots` is what the C function has on its stack before decoding.
local function unpack_full(name, s, limit, offset, slots)
  local len = #s
  if offset < 0 or limit < 0 then
    error(format("Invalid request to unpack with offset of %d and limit of %d.",
                 to_int(offset), to_int(len)), 0)
  elseif offset > len then
    error(format("Start offset %d greater than input length %d.", to_int(offset),
                 to_int(len)), 0)
  end
  local decode_all = limit == 0 and offset == 0
  if decode_all then limit = INT_MAX end
  local c = decoder(s, offset, slots)
  local results, count = {}, 0
  while c.left > 0 and count < limit do
    local value = decode(c)
    if c.err == EOF then error("Missing bytes in input.", 0) end
    if c.err == BADFMT then error("Bad data format in input.", 0) end
    count = count + 1
    results[count] = value
    c.slots = c.slots + 1
  end
  if decode_all then
    if count > MAX_RESULTS then error(TOO_MANY, 0) end
    return unpack(results, 1, count)
  end
  check_stack(c, 1, "stack overflow (in function mp_unpack_full)")
  if count + 1 > MAX_RESULTS then error(TOO_MANY, 0) end
  return (c.left == 0 and -1 or len - c.left), unpack(results, 1, count)
end

local function check_string(name, n, ...)
  local value = select(n, ...)
  local kind = type(value)
  if kind == "string" then return value end
  if kind == "number" then return tostring(value) end
  type_error(name, n, "string", ...)
end

-- luaL_checkinteger / luaL_optinteger: (lua_Integer) of the number, truncated.
local function check_integer(name, n, ...)
  local value = tonumber((select(n, ...)))
  if value == nil then type_error(name, n, "number", ...) end
  if value ~= value or value >= TWO63 or value < -TWO63 then return -TWO63 end
  return value < 0 and ceil(value) or floor(value)
end

local function opt_integer(name, n, default, ...)
  if select("#", ...) < n or select(n, ...) == nil then return default end
  return check_integer(name, n, ...)
end

local cmsgpack = {
  _NAME = "cmsgpack", _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
  _DESCRIPTION = "MessagePack C implementation for Lua",
}

function cmsgpack.pack(...)
  local n = select("#", ...)
  if n == 0 then error("bad argument #0 to 'pack' (MessagePack pack needs input.)", 0) end
  -- lua_checkstack(L, nargs) on top of the nargs arguments.
  if 2 * n > MAXCSTACK then
    error("bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)", 0)
  end
  local out = {}
  for i = 1, n do encode((select(i, ...)), 0, out) end
  return concat(out)
end

function cmsgpack.unpack(...)
  local s = check_string("unpack", 1, ...)
  return unpack_full("unpack", s, 0, 0, select("#", ...))
end

function cmsgpack.unpack_one(...)
  local offset = opt_integer("unpack_one", 2, 0, ...)
  local s = check_string("unpack_one", 1, ...)
  return unpack_full("unpack_one", s, 1, offset, 1)
end

function cmsgpack.unpack_limit(...)
  local limit = check_integer("unpack_limit", 2, ...)
  local offset = opt_integer("unpack_limit", 3, 0, ...)
  local s = check_string("unpack_limit", 1, ...)
  return unpack_full("unpack_limit", s, limit, offset, 1)
end

return cmsgpack
