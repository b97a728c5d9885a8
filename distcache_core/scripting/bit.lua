-- bit for scripts: LuaBitOp 1.0 (the `bit` library Redis's Lua has), written in Lua 5.1
-- arithmetic. Every operation works on 32-bit integers and returns a signed one; arguments
-- are normalised as LuaBitOp does (rounded to the nearest integer, ties to even, then taken
-- modulo 2^32). Errors are raised without a position: the sandbox serves these functions
-- from C (coroutine.wrap), which adds the script's position as luaL_argerror does.
local floor, frexp, huge, format, sub, select, type, tonumber, error =
      math.floor, math.frexp, math.huge, string.format, string.sub, select, type, tonumber, error

local TWO32, TWO31 = 4294967296, 2147483648

local function number_arg(name, n, ...)
  local value = select(n, ...)
  local kind = type(value)
  if kind == "string" then value = tonumber(value) kind = type(value) end
  if kind ~= "number" then
    local got = select("#", ...) < n and "no value" or type((select(n, ...)))
    error(format("bad argument #%d to '%s' (number expected, got %s)", n, name, got), 0)
  end
  return value
end

-- The argument as an unsigned 32-bit integer, as LuaBitOp's barg makes it: add 2^52 + 2^51
-- (the addition rounds half to even) and keep the low 32 bits of the double's significand.
-- Past 2^51 that is not the value modulo 2^32, and LuaBitOp's result is still these bits.
local function unsigned(x)
  local d = x + 6755399441055744
  if d ~= d or d == huge or d == -huge then return 0 end
  local fraction = frexp(d)
  if fraction < 0 then fraction = -fraction end
  return fraction * 2 ^ 53 % TWO32
end

local function signed(u)
  if u >= TWO31 then return u - TWO32 end
  return u
end

-- Nibble tables: and/or/xor of two 4-bit values.
local AND, OR, XOR = {}, {}, {}
for a = 0, 15 do
  for b = 0, 15 do
    local x, y, r_and, r_or, r_xor, bit = a, b, 0, 0, 0, 1
    for _ = 1, 4 do
      local p, q = x % 2, y % 2
      if p == 1 and q == 1 then r_and = r_and + bit end
      if p == 1 or q == 1 then r_or = r_or + bit end
      if p ~= q then r_xor = r_xor + bit end
      x, y, bit = (x - p) / 2, (y - q) / 2, bit * 2
    end
    AND[a * 16 + b], OR[a * 16 + b], XOR[a * 16 + b] = r_and, r_or, r_xor
  end
end

local function combine(table_, a, b)
  local result, place = 0, 1
  for _ = 1, 8 do
    local p, q = a % 16, b % 16
    result = result + table_[p * 16 + q] * place
    a, b, place = (a - p) / 16, (b - q) / 16, place * 16
  end
  return result
end

local function fold(name, table_, ...)
  local result = unsigned(number_arg(name, 1, ...))
  for i = 2, select("#", ...) do
    result = combine(table_, result, unsigned(number_arg(name, i, ...)))
  end
  return signed(result)
end

local function shift_count(name, ...)
  return unsigned(number_arg(name, 2, ...)) % 32
end

local bit = {}

function bit.tobit(...)
  return signed(unsigned(number_arg("tobit", 1, ...)))
end

function bit.tohex(...)
  local x = unsigned(number_arg("tohex", 1, ...))
  local n = 8
  if select("#", ...) >= 2 then
    n = signed(unsigned(number_arg("tohex", 2, ...)))
  end
  local digits = "%08x"
  if n < 0 then n, digits = -n, "%08X" end
  if n > 8 then n = 8 end
  local text = format(digits, x)
  return sub(text, 9 - n)
end

function bit.bnot(...)
  return signed(TWO32 - 1 - unsigned(number_arg("bnot", 1, ...)))
end

function bit.band(...) return fold("band", AND, ...) end
function bit.bor(...) return fold("bor", OR, ...) end
function bit.bxor(...) return fold("bxor", XOR, ...) end

function bit.lshift(...)
  local x, n = unsigned(number_arg("lshift", 1, ...)), shift_count("lshift", ...)
  return signed(x % 2 ^ (32 - n) * 2 ^ n)
end

function bit.rshift(...)
  local x, n = unsigned(number_arg("rshift", 1, ...)), shift_count("rshift", ...)
  return signed(floor(x / 2 ^ n))
end

function bit.arshift(...)
  local x, n = signed(unsigned(number_arg("arshift", 1, ...))), shift_count("arshift", ...)
  return signed(floor(x / 2 ^ n) % TWO32)
end

function bit.rol(...)
  local x, n = unsigned(number_arg("rol", 1, ...)), shift_count("rol", ...)
  return signed(x % 2 ^ (32 - n) * 2 ^ n + floor(x / 2 ^ (32 - n)))
end

function bit.ror(...)
  local x, n = unsigned(number_arg("ror", 1, ...)), shift_count("ror", ...)
  n = (32 - n) % 32
  return signed(x % 2 ^ (32 - n) * 2 ^ n + floor(x / 2 ^ (32 - n)))
end

function bit.bswap(...)
  local x = unsigned(number_arg("bswap", 1, ...))
  local b0, b1, b2 = x % 256, floor(x / 256) % 256, floor(x / 65536) % 256
  local b3 = floor(x / 16777216)
  return signed(((b0 * 256 + b1) * 256 + b2) * 256 + b3)
end

return bit
