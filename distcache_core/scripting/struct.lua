-- struct for scripts: Roberto Ierusalimschy's struct library (struct.c 1.4, with Redis's
-- fixes: a size overflow check, "offset must be 1 or greater") as Redis 7.0's Lua has it,
-- written in Lua 5.1 arithmetic for a 64-bit little-endian machine (sizeof long 8, int 4,
-- alignment at most 8). pack, unpack and size give the bytes, values and errors Redis's C
-- gives, down to what x86-64 does with out-of-range conversions (a number past 2^64 packs
-- as 0, NaN as 2^63). Errors are raised without a position: the sandbox serves these
-- functions from C (coroutine.wrap), which adds the script's position as luaL_error does.
local ieee = ...

local type, tonumber, tostring, select, error, unpack = type, tonumber, tostring, select,
      error, unpack
local floor, ceil = math.floor, math.ceil
local byte, char, sub, find, format, rep = string.byte, string.char, string.sub,
      string.find, string.format, string.rep
local concat = table.concat
local float_bytes, double_bytes = ieee.float_bytes, ieee.double_bytes
local float_from, double_from = ieee.float_from, ieee.double_from

local MAXINTSIZE, MAXALIGN, INT_MAX = 32, 8, 2147483647
-- The Lua C stack a C function may fill (LUAI_MAXCSTACK), and the most values the sandbox
-- returns from a library function (sandbox.lua's MAX_RESULTS).
local MAXCSTACK, MAX_RESULTS = 8000, 7997
local TWO32, TWO63 = 4294967296, 9223372036854775808

-- --- arguments, as luaL_check* take them ----------------------------------------------------

local function argument_error(name, n, message)
  error(format("bad argument #%d to '%s' (%s)", n, name, message), 0)
end

-- Arguments are taken from a table {n = count, ...}: the function's stack as C sees it.
local function arguments(...)
  return {n = select("#", ...), ...}
end

local function type_error(name, n, expected, args)
  local got = args.n < n and "no value" or type(args[n])
  argument_error(name, n, expected .. " expected, got " .. got)
end

local function check_string(name, n, args)
  local value = args[n]
  local kind = type(value)
  if kind == "string" then return value end
  if kind == "number" then return tostring(value) end
  type_error(name, n, "string", args)
end

local function check_number(name, n, args)
  local value = tonumber(args[n])
  if value == nil then type_error(name, n, "number", args) end
  return value
end

-- luaL_optinteger: (lua_Integer) of the number, truncated; LLONG_MIN when out of range.
local function opt_integer(name, n, default, args)
  if args[n] == nil then return default end
  local value = check_number(name, n, args)
  if value ~= value or value >= TWO63 or value < -TWO63 then return -TWO63 end
  return value < 0 and ceil(value) or floor(value)
end

-- (size_t) of a number as x86-64 converts it: truncated; a negative one wraps around to a
-- huge size, and so does NaN; 2^64 and beyond give 0.
local function size_t(x)
  if x ~= x or x < -TWO63 then return TWO63 end
  if x < 0 then
    local truncated = ceil(x)
    return truncated == 0 and 0 or 2 * TWO63 + truncated
  end
  if x < 2 * TWO63 then return floor(x) end
  return 0
end

-- --- the format -------------------------------------------------------------------------------

local function is_digit(c)
  return c ~= nil and c >= 48 and c <= 57
end

-- getnum: the number at fmt[at] (or the default), and the position after it.
local function number_at(fmt, at, default)
  local c = byte(fmt, at)
  if not is_digit(c) then return default, at end
  local a = 0
  repeat
    local digit = c - 48
    if a > 214748364 or a * 10 > INT_MAX - digit then error("integral size overflow", 0) end
    a = a * 10 + digit
    at = at + 1
    c = byte(fmt, at)
  until not is_digit(c)
  return a, at
end

local FIXED = {B = 1, b = 1, H = 2, h = 2, L = 8, l = 8, T = 8, f = 4, d = 8, x = 1}
local INTEGER = {B = true, b = true, H = true, h = true, L = true, l = true, T = true,
                 i = true, I = true}

-- optsize: the option's size in bytes, and the position after its digits.
local function option_size(opt, fmt, at)
  local size = FIXED[opt]
  if size then return size, at end
  if opt == "c" then return number_at(fmt, at, 1) end
  if opt == "i" or opt == "I" then
    size, at = number_at(fmt, at, 4)
    if size > MAXINTSIZE then
      error(format("integral size %d is larger than limit of %d", size, MAXINTSIZE), 0)
    end
    return size, at
  end
  return 0, at
end

-- a & m for a >= 0 and a small mask m.
local function band_small(a, m)
  local result, place = 0, 1
  while m > 0 do
    if m % 2 == 1 and floor(a / place) % 2 == 1 then result = result + place end
    m, place = floor(m / 2), place * 2
  end
  return result
end

-- gettoalign: padding before an option of `size` bytes at offset `len`.
local function padding(len, header, opt, size)
  if size == 0 or opt == "c" then return 0 end
  if size > header.align then size = header.align end
  return band_small(size - band_small(len, size - 1), size - 1)
end

local function is_power_of_2(a)
  return a > 0 and band_small(a, a - 1) == 0
end

-- controloptions: endianness, alignment, spaces; anything else is an invalid option.
local function control(name, opt, fmt, at, header)
  if opt == " " then return at end
  if opt == ">" then header.little = false return at end
  if opt == "<" then header.little = true return at end
  if opt == "!" then
    local a
    a, at = number_at(fmt, at, MAXALIGN)
    if not is_power_of_2(a) then error(format("alignment %d is not a power of 2", a), 0) end
    header.align = a
    return at
  end
  argument_error(name, 1, "invalid format option '" .. opt .. "'")
end

-- The C loop stops at the format's first zero byte.
local function format_of(name, args)
  local fmt = check_string(name, 1, args)
  local zero = find(fmt, "\0", 1, true)
  if zero then fmt = sub(fmt, 1, zero - 1) end
  return fmt
end

-- --- integers -----------------------------------------------------------------------------

-- Little-endian bytes of a magnitude below 2^64.
local function magnitude_bytes(m)
  local bytes = {}
  for i = 1, 8 do
    local low = m % 256
    bytes[i] = low
    m = (m - low) / 256
  end
  return bytes
end

-- Two's complement, in place.
local function negate(bytes)
  local carry = 1
  for i = 1, 8 do
    local b = 255 - bytes[i] + carry
    if b == 256 then bytes[i], carry = 0, 1 else bytes[i], carry = b, 0 end
  end
  return bytes
end

-- putinteger: the number as the unsigned long C makes of it (cvttsd2si and gcc's unsigned
-- conversion on x86-64), low `size` bytes of it, zeros past the eighth.
local function pack_integer(n, size, little)
  local bytes
  if n < 0 then
    if n < -TWO63 then bytes = negate(magnitude_bytes(TWO63))
    else bytes = negate(magnitude_bytes(-ceil(n))) end
  elseif n ~= n then
    bytes = magnitude_bytes(TWO63)
  elseif n < 2 * TWO63 then
    bytes = magnitude_bytes(floor(n))
  else
    bytes = magnitude_bytes(0)
  end
  local out = {}
  for i = 1, size do
    local b = bytes[i] or 0
    if little then out[i] = b else out[size + 1 - i] = b end
  end
  return char(unpack(out, 1, size))
end

local function value_of(bytes)
  local low = ((bytes[4] * 256 + bytes[3]) * 256 + bytes[2]) * 256 + bytes[1]
  local high = ((bytes[8] * 256 + bytes[7]) * 256 + bytes[6]) * 256 + bytes[5]
  return high * TWO32 + low  -- one rounding, as C's conversion of the 64-bit value
end

-- getinteger: the unsigned long the C loop shifts the bytes into (the last eight it
-- reads), sign-extended from bit size*8-1 (x86 takes that shift count modulo 64).
local function unpack_integer(data, at, little, signed, size)
  local bytes = {}
  for k = 1, 8 do
    local b = 0
    if k <= size then
      b = little and byte(data, at + k - 1) or byte(data, at + size - k)
    end
    bytes[k] = b
  end
  if signed then
    local shift = (size * 8 - 1) % 64
    local index, bit = floor(shift / 8) + 1, shift % 8
    local set = floor(bytes[index] / 2 ^ bit) > 0
    for k = index + 1, 8 do
      if bytes[k] > 0 then set = true end
    end
    if set then
      bytes[index] = bytes[index] % 2 ^ bit + (256 - 2 ^ bit)
      for k = index + 1, 8 do bytes[k] = 255 end
    end
    if bytes[8] >= 128 then return -value_of(negate(bytes)) end
  end
  return value_of(bytes)
end

-- --- the functions ------------------------------------------------------------------------------

local struct = {}

function struct.pack(...)
  local args = arguments(...)
  local fmt = format_of("pack", args)
  -- b_pack pushes a nil after its arguments: a missing one reads "nil", not "no value".
  args.n = args.n + 1
  local header = {little = true, align = 1}
  local arg, total, out, at = 2, 0, {}, 1
  while at <= #fmt do
    local opt = sub(fmt, at, at)
    local size
    size, at = option_size(opt, fmt, at + 1)
    local pad = padding(total, header, opt, size)
    total = total + pad
    if pad > 0 then out[#out + 1] = rep("\0", pad) end
    if INTEGER[opt] then
      out[#out + 1] = pack_integer(check_number("pack", arg, args), size, header.little)
      arg = arg + 1
    elseif opt == "x" then
      out[#out + 1] = "\0"
    elseif opt == "f" or opt == "d" then
      local n = check_number("pack", arg, args)
      arg = arg + 1
      local bytes = opt == "f" and float_bytes(n) or double_bytes(n)
      if header.little then bytes = bytes:reverse() end
      out[#out + 1] = bytes
    elseif opt == "c" or opt == "s" then
      local s = check_string("pack", arg, args)
      arg = arg + 1
      if size == 0 then size = #s end
      -- luaL_argcheck names the argument after the string (arg was already incremented).
      if #s < size then argument_error("pack", arg, "string too short") end
      out[#out + 1] = sub(s, 1, size)
      if opt == "s" then
        out[#out + 1] = "\0"
        size = size + 1
      end
    else
      at = control("pack", opt, fmt, at, header)
    end
    total = total + size
  end
  return concat(out)
end

function struct.unpack(...)
  local args = arguments(...)
  local fmt = format_of("unpack", args)
  local data = check_string("unpack", 2, args)
  local start = opt_integer("unpack", 3, 1, args)
  if start == 0 then argument_error("unpack", 3, "offset must be 1 or greater") end
  -- A negative offset is a huge size_t in C: every option finds the data too short.
  local pos, length = start - 1, #data
  local header, results, n, at = {little = true, align = 1}, {}, 0, 1
  while at <= #fmt do
    local opt = sub(fmt, at, at)
    local size
    size, at = option_size(opt, fmt, at + 1)
    if start > 0 then pos = pos + padding(pos, header, opt, size) end
    if start < 0 or size > length or pos > length - size then
      argument_error("unpack", 2, "data string too short")
    end
    -- luaL_checkstack(L, 1) over the format, the data and the values so far; and the
    -- sandbox returns at most MAX_RESULTS values (one fewer than Redis here).
    if 2 + n + 1 > MAXCSTACK or n + 2 > MAX_RESULTS then
      error("stack overflow (too many results)", 0)
    end
    if INTEGER[opt] then
      n = n + 1
      results[n] = unpack_integer(data, pos + 1, header.little, opt:lower() == opt, size)
    elseif opt == "f" or opt == "d" then
      local bytes = sub(data, pos + 1, pos + size)
      if header.little then bytes = bytes:reverse() end
      n = n + 1
      results[n] = opt == "f" and float_from(bytes, 1) or double_from(bytes, 1)
    elseif opt == "c" then
      if size == 0 then
        local previous = n > 0 and tonumber(results[n])
        if not previous then error("format 'c0' needs a previous size", 0) end
        size = size_t(previous)
        n = n - 1
        if size > length or pos > length - size then
          argument_error("unpack", 2, "data string too short")
        end
      end
      n = n + 1
      results[n] = sub(data, pos + 1, pos + size)
    elseif opt == "s" then
      local zero = find(data, "\0", pos + 1, true)
      if not zero then error("unfinished string in data", 0) end
      size = zero - pos
      n = n + 1
      results[n] = sub(data, pos + 1, zero - 1)
    elseif opt ~= "x" then
      at = control("unpack", opt, fmt, at, header)
    end
    pos = pos + size
  end
  results[n + 1] = start > 0 and pos + 1 or start
  return unpack(results, 1, n + 1)
end

local function is_alphanumeric(opt)
  return find(opt, "^%w$") ~= nil and byte(opt) < 128
end

function struct.size(...)
  local fmt = format_of("size", arguments(...))
  local header, pos, at = {little = true, align = 1}, 0, 1
  while at <= #fmt do
    local opt = sub(fmt, at, at)
    local size
    size, at = option_size(opt, fmt, at + 1)
    pos = pos + padding(pos, header, opt, size)
    if opt == "s" then
      argument_error("size", 1, "option 's' has no fixed size")
    elseif opt == "c" and size == 0 then
      argument_error("size", 1, "option 'c0' has no fixed size")
    end
    if not is_alphanumeric(opt) then at = control("size", opt, fmt, at, header) end
    pos = pos + size
  end
  return pos
end

return struct
