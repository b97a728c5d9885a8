-- cjson for scripts: lua-cjson 2.1.0's encode and decode as Redis 7.0 ships them (default
-- settings), written in Lua. The output and the error messages are lua-cjson's, so that a
-- script sees the same JSON and the same failures as on Redis (checked against redis-server
-- in tests/e2e/redis_corpus/scripting.py). Errors are raised without a position: the sandbox
-- serves these functions from C (coroutine.wrap), which adds the script's position as
-- luaL_error does in lua-cjson.
local null = ...

local type, pairs, next, rawget, tostring, tonumber, error, select =
      type, pairs, next, rawget, tostring, tonumber, error, select
local floor, huge = math.floor, math.huge
local byte, char, sub, find, format, match = string.byte, string.char, string.sub,
      string.find, string.format, string.match
local concat = table.concat

local MAX_DEPTH = 1000
local SPARSE_RATIO, SPARSE_SAFE = 2, 10

-- --- encode ----------------------------------------------------------------------------------

local escapes = {}
for code = 0, 31 do escapes[char(code)] = format("\\u%04x", code) end
escapes["\b"], escapes["\t"], escapes["\n"], escapes["\f"], escapes["\r"] =
  "\\b", "\\t", "\\n", "\\f", "\\r"
escapes['"'], escapes["\\"], escapes["/"], escapes["\127"] = '\\"', "\\\\", "\\/", "\\u007f"

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\/\127]', escapes) .. '"'
end

local function cannot(kind, reason)
  error("Cannot serialise " .. kind .. ": " .. reason, 0)
end

local function encode_number(n)
  if n ~= n or n == huge or n == -huge then cannot("number", "must not be NaN or Inf") end
  return format("%.14g", n)
end

local encode_value

-- lua_array_length: the array length, or -1 for an object.
local function array_length(t)
  local max, items = 0, 0
  for k in next, t do
    if type(k) == "number" and k ~= 0 and floor(k) == k and k >= 1 then
      -- max is a C int: x86 makes a key past INT_MAX INT_MIN, and the table an object.
      if k > max then max = k < 2147483648 and k or -2147483648 end
      items = items + 1
    else
      return -1
    end
  end
  if max > items * SPARSE_RATIO and max > SPARSE_SAFE then
    cannot("table", "excessively sparse array")
  end
  return max
end

encode_value = function(value, depth, out)
  local kind = type(value)
  if kind == "string" then
    out[#out + 1] = encode_string(value)
  elseif kind == "number" then
    out[#out + 1] = encode_number(value)
  elseif kind == "boolean" then
    out[#out + 1] = value and "true" or "false"
  elseif kind == "nil" or value == null then
    out[#out + 1] = "null"
  elseif kind == "table" then
    depth = depth + 1
    if depth > MAX_DEPTH then
      error(format("Cannot serialise, excessive nesting (%d)", depth), 0)
    end
    local length = array_length(value)
    if length > 0 then
      out[#out + 1] = "["
      for i = 1, length do
        if i > 1 then out[#out + 1] = "," end
        encode_value(rawget(value, i), depth, out)
      end
      out[#out + 1] = "]"
    else
      out[#out + 1] = "{"
      local first = true
      for k, v in next, value do
        if not first then out[#out + 1] = "," end
        first = false
        local key_kind = type(k)
        if key_kind == "string" then
          out[#out + 1] = encode_string(k)
        elseif key_kind == "number" then
          out[#out + 1] = '"' .. encode_number(k) .. '"'
        else
          cannot(key_kind, "table key must be a number or string")
        end
        out[#out + 1] = ":"
        encode_value(v, depth, out)
      end
      out[#out + 1] = "}"
    end
  else
    cannot(kind, "type not supported")
  end
end

local function encode(...)
  if select("#", ...) ~= 1 then
    error("bad argument #1 to 'encode' (expected 1 argument)", 0)
  end
  local out = {}
  encode_value((...), 0, out)
  return concat(out)
end

-- --- decode ----------------------------------------------------------------------------------

-- A token: kind, value, index (1-based character where it starts, or where the error is, as
-- lua-cjson reports it), and where the next token may start.
local T_OBJ_BEGIN, T_OBJ_END, T_ARR_BEGIN, T_ARR_END, T_STRING, T_NUMBER, T_BOOLEAN, T_NULL,
      T_COLON, T_COMMA, T_END, T_ERROR = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13
local TOKEN_NAMES = {"T_OBJ_BEGIN", "T_OBJ_END", "T_ARR_BEGIN", "T_ARR_END", "T_STRING",
                     "T_NUMBER", "T_BOOLEAN", "T_NULL", "T_COLON", "T_COMMA", "T_END",
                     "T_WHITESPACE", "T_ERROR", "T_UNKNOWN"}
local SINGLE = {["{"] = T_OBJ_BEGIN, ["}"] = T_OBJ_END, ["["] = T_ARR_BEGIN,
                ["]"] = T_ARR_END, [":"] = T_COLON, [","] = T_COMMA}
local SIMPLE_ESCAPES = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
                        n = "\n", r = "\r", t = "\t"}

local function utf8(code)
  if code < 0x80 then return char(code) end
  if code < 0x800 then return char(0xC0 + floor(code / 64), 0x80 + code % 64) end
  if code < 0x10000 then
    return char(0xE0 + floor(code / 4096), 0x80 + floor(code / 64) % 64, 0x80 + code % 64)
  end
  return char(0xF0 + floor(code / 262144), 0x80 + floor(code / 4096) % 64,
              0x80 + floor(code / 64) % 64, 0x80 + code % 64)
end

-- json_is_invalid_number: forms strtod reads but JSON does not (accepted, as Redis's
-- decode_invalid_numbers is on).
local function invalid_number_form(text, pos)
  local c = sub(text, pos, pos)
  if c == "+" then return true end
  if c == "-" then pos = pos + 1 c = sub(text, pos, pos) end
  if c == "0" then
    local c2 = sub(text, pos + 1, pos + 1)
    return c2 == "x" or c2 == "X" or (c2 >= "0" and c2 <= "9" and c2 ~= "")
  elseif c ~= "" and c <= "9" then
    return false
  end
  local word = sub(text, pos, pos + 2):lower()
  return word == "inf" or word == "nan"
end

-- The longest prefix of text at pos that strtod reads; its value and end, or nil.
local function strtod(text, pos)
  local candidates = {
    match(text, "^[+-]?0[xX]%x*%.?%x*[pP][+-]?%d+", pos),
    match(text, "^[+-]?0[xX]%x*%.?%x*", pos),
    match(text, "^[+-]?%d*%.?%d*[eE][+-]?%d+", pos),
    match(text, "^[+-]?%d*%.?%d*", pos),
    match(text, "^[+-]?[iI][nN][fF][iI][nN][iI][tT][yY]", pos),
    match(text, "^[+-]?[iI][nN][fF]", pos),
    match(text, "^[+-]?[nN][aA][nN]", pos),
  }
  for _, candidate in pairs(candidates) do
    local value = tonumber(candidate)
    if value == nil and candidate ~= "" then
      local word = candidate:lower():gsub("^[+-]", "")
      if word == "inf" or word == "infinity" then
        value = sub(candidate, 1, 1) == "-" and -huge or huge
      elseif word == "nan" then
        value = 0 / 0
      end
    end
    if value ~= nil then return value, pos + #candidate end
  end
  return nil
end

local function next_token(text, pos)
  pos = find(text, "[^ \t\n\r]", pos) or #text + 1
  if pos > #text then return T_END, nil, pos, pos end
  local c = sub(text, pos, pos)
  local single = SINGLE[c]
  if single then return single, nil, pos, pos + 1 end
  if c == '"' then
    local parts, i = {}, pos + 1
    while true do
      local stop = find(text, '["\\]', i)
      if stop == nil then return T_ERROR, "unexpected end of string", #text + 1, i end
      parts[#parts + 1] = sub(text, i, stop - 1)
      if sub(text, stop, stop) == '"' then
        return T_STRING, concat(parts), pos, stop + 1
      end
      local e = sub(text, stop + 1, stop + 1)
      if SIMPLE_ESCAPES[e] then
        parts[#parts + 1] = SIMPLE_ESCAPES[e]
        i = stop + 2
      elseif e == "u" then
        local hex = match(text, "^%x%x%x%x", stop + 2)
        if hex == nil then return T_ERROR, "invalid unicode escape code", stop, stop end
        local code = tonumber(hex, 16)
        i = stop + 6
        if code >= 0xD800 and code <= 0xDBFF then
          local low = match(text, "^\\u(%x%x%x%x)", i)
          local low_code = low and tonumber(low, 16)
          if low_code == nil or low_code < 0xDC00 or low_code > 0xDFFF then
            return T_ERROR, "invalid unicode escape code", stop, stop
          end
          code = 0x10000 + (code - 0xD800) * 0x400 + (low_code - 0xDC00)
          i = i + 6
        elseif code >= 0xDC00 and code <= 0xDFFF then
          return T_ERROR, "invalid unicode escape code", stop, stop
        end
        parts[#parts + 1] = utf8(code)
      else
        return T_ERROR, "invalid escape code", stop, stop
      end
    end
  end
  if c == "-" or (c >= "0" and c <= "9") then
    local value, stop = strtod(text, pos)
    if value == nil then return T_ERROR, "invalid number", pos, pos end
    return T_NUMBER, value, pos, stop
  end
  if sub(text, pos, pos + 3) == "true" then return T_BOOLEAN, true, pos, pos + 4 end
  if sub(text, pos, pos + 4) == "false" then return T_BOOLEAN, false, pos, pos + 5 end
  if sub(text, pos, pos + 3) == "null" then return T_NULL, null, pos, pos + 4 end
  if invalid_number_form(text, pos) then
    local value, stop = strtod(text, pos)
    if value == nil then return T_ERROR, "invalid number", pos, pos end
    return T_NUMBER, value, pos, stop
  end
  return T_ERROR, "invalid token", pos, pos
end

local function parse_error(expected, kind, value, index)
  local found = kind == T_ERROR and value or TOKEN_NAMES[kind]
  error(format("Expected %s but found %s at character %d", expected, found, index), 0)
end

local parse_value

local function parse_object(text, pos, depth, index)
  if depth > MAX_DEPTH then
    error(format("Found too many nested data structures (%d) at character %d", depth, index), 0)
  end
  local object = {}
  local kind, value, at, stop = next_token(text, pos)
  if kind == T_OBJ_END then return object, stop end
  while true do
    if kind ~= T_STRING then parse_error("object key string", kind, value, at) end
    local key = value
    kind, value, at, stop = next_token(text, stop)
    if kind ~= T_COLON then parse_error("colon", kind, value, at) end
    object[key], stop = parse_value(text, stop, depth)
    kind, value, at, stop = next_token(text, stop)
    if kind == T_OBJ_END then return object, stop end
    if kind ~= T_COMMA then parse_error("comma or object end", kind, value, at) end
    kind, value, at, stop = next_token(text, stop)
  end
end

local function parse_array(text, pos, depth, index)
  if depth > MAX_DEPTH then
    error(format("Found too many nested data structures (%d) at character %d", depth, index), 0)
  end
  local array, n = {}, 0
  local kind, value, at, stop = next_token(text, pos)
  if kind == T_ARR_END then return array, stop end
  while true do
    n = n + 1
    array[n], stop = parse_value(text, at, depth)
    kind, value, at, stop = next_token(text, stop)
    if kind == T_ARR_END then return array, stop end
    if kind ~= T_COMMA then parse_error("comma or array end", kind, value, at) end
    kind, value, at, stop = next_token(text, stop)
  end
end

parse_value = function(text, pos, depth)
  local kind, value, at, stop = next_token(text, pos)
  if kind == T_OBJ_BEGIN then return parse_object(text, stop, depth + 1, at) end
  if kind == T_ARR_BEGIN then return parse_array(text, stop, depth + 1, at) end
  if kind == T_STRING or kind == T_NUMBER or kind == T_BOOLEAN or kind == T_NULL then
    return value, stop
  end
  parse_error("value", kind, value, at)
end

local function decode(...)
  if select("#", ...) ~= 1 then
    error("bad argument #1 to 'decode' (expected 1 argument)", 0)
  end
  local text = ...
  if type(text) == "number" then text = tostring(text) end
  if type(text) ~= "string" then
    error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 0)
  end
  local value, stop = parse_value(text, 1, 0)
  local kind, token, at = next_token(text, stop)
  if kind ~= T_END then parse_error("the end", kind, token, at) end
  return value
end

return encode, decode
