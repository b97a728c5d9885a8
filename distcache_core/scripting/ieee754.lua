-- IEEE 754 binary32 and binary64 in Lua 5.1 arithmetic, for struct.lua and cmsgpack.lua:
-- what Redis's C libraries get from memcpy of a float or a double. Bytes are big-endian.
-- A NaN keeps its sign (x86's 0/0 is -nan) but no payload: Lua arithmetic cannot make one.
local floor, frexp, ldexp, huge, format, char, byte, unpack =
      math.floor, math.frexp, math.ldexp, math.huge, string.format, string.char, string.byte,
      unpack

local function negative(x)
  if x ~= x then return format("%f", x) == "-nan" end
  return x < 0 or (x == 0 and 1 / x < 0)
end

local function round_half_even(v)
  local whole = floor(v)
  local rest = v - whole
  if rest > 0.5 or (rest == 0.5 and whole % 2 == 1) then return whole + 1 end
  return whole
end

-- (double)(float)x: x rounded to the nearest binary32, ties to even, overflow to infinity.
local function to_float(x)
  if x ~= x or x == 0 or x == huge or x == -huge then return x end
  local magnitude = x < 0 and -x or x
  local m, e = frexp(magnitude)
  local rounded
  if e >= -125 then
    rounded = ldexp(round_half_even(ldexp(m, 24)), e - 24)
  else
    rounded = ldexp(round_half_even(ldexp(magnitude, 149)), -149)
  end
  if rounded >= 2 ^ 128 then rounded = huge end
  return x < 0 and -rounded or rounded
end

-- The big-endian bytes of a nonnegative integer below 2^(8*count).
local function integer_bytes(value, count)
  local out = {}
  for i = count, 1, -1 do
    local low = value % 256
    out[i] = low
    value = (value - low) / 256
  end
  return char(unpack(out, 1, count))
end

local function float_bytes(x)
  local sign = negative(x) and 2147483648 or 0
  local y = to_float(x)
  local bits
  if y ~= y then
    bits = 2143289344  -- quiet NaN, 0x7fc00000
  elseif y == huge or y == -huge then
    bits = 2139095040  -- 0x7f800000
  elseif y == 0 then
    bits = 0
  else
    local magnitude = y < 0 and -y or y
    local m, e = frexp(magnitude)
    if e >= -125 then
      bits = (e + 126) * 8388608 + (ldexp(m, 24) - 8388608)
    else
      bits = ldexp(magnitude, 149)
    end
  end
  return integer_bytes(sign + bits, 4)
end

local function double_bytes(x)
  local sign = negative(x) and 2147483648 or 0
  local high, low
  if x ~= x then
    high, low = 2146959360, 0  -- quiet NaN, 0x7ff80000 00000000
  elseif x == huge or x == -huge then
    high, low = 2146435072, 0
  elseif x == 0 then
    high, low = 0, 0
  else
    local magnitude = x < 0 and -x or x
    local m, e = frexp(magnitude)
    local exponent, fraction
    if e >= -1021 then
      exponent, fraction = e + 1022, ldexp(m, 53) - 4503599627370496
    else
      exponent, fraction = 0, ldexp(magnitude, 1074)
    end
    low = fraction % 4294967296
    high = exponent * 1048576 + (fraction - low) / 4294967296
  end
  return integer_bytes(sign + high, 4) .. integer_bytes(low, 4)
end

local function signed_nan(is_negative)
  local nan = 0 / 0
  if negative(nan) ~= is_negative then nan = -nan end
  return nan
end

-- The binary32 at s[i..i+3].
local function float_from(s, i)
  local b1, b2, b3, b4 = byte(s, i, i + 3)
  local is_negative = b1 >= 128
  local exponent = (b1 % 128) * 2 + floor(b2 / 128)
  local fraction = ((b2 % 128) * 256 + b3) * 256 + b4
  local value
  if exponent == 255 then
    if fraction ~= 0 then return signed_nan(is_negative) end
    value = huge
  elseif exponent == 0 then
    value = ldexp(fraction, -149)
  else
    value = ldexp(fraction + 8388608, exponent - 150)
  end
  return is_negative and -value or value
end

-- The binary64 at s[i..i+7].
local function double_from(s, i)
  local b1, b2, b3, b4, b5, b6, b7, b8 = byte(s, i, i + 7)
  local is_negative = b1 >= 128
  local exponent = (b1 % 128) * 16 + floor(b2 / 16)
  local fraction = (((b2 % 16) * 256 + b3) * 256 + b4) * 4294967296
                   + ((b5 * 256 + b6) * 256 + b7) * 256 + b8
  local value
  if exponent == 2047 then
    if fraction ~= 0 then return signed_nan(is_negative) end
    value = huge
  elseif exponent == 0 then
    value = ldexp(fraction, -1074)
  else
    value = ldexp(fraction + 4503599627370496, exponent - 1075)
  end
  return is_negative and -value or value
end

return {to_float = to_float, float_bytes = float_bytes, double_bytes = double_bytes,
        float_from = float_from, double_from = double_from, integer_bytes = integer_bytes}
