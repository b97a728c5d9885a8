"""Scripting: EVAL EVALSHA EVAL_RO EVALSHA_RO and SCRIPT (LOAD EXISTS FLUSH KILL HELP).

Both servers run the same Lua (5.1) in the same sandbox, so script results, the Lua <-> RESP
conversions and the error lines (with the script's SHA1 and line) compare byte for byte. The
long-running case (-BUSY, SCRIPT KILL) is in tests/e2e/test_scripting_busy.py: it needs
timing, not a corpus.
"""

from distcache_core.testing.differential import Case, Req, command_docs, command_info

RETURN_ONE_SHA = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"


def ev(body: str, *args: str) -> tuple[str, ...]:
    return ("EVAL", body, *(args or ("0",)))


#: Numbers out of struct.unpack and cmsgpack.unpack, with all their digits.
SHOW = ("local function show(...) local r = {} for i = 1, select('#', ...) do "
        "local v = select(i, ...) if type(v) == 'number' then v = string.format('%.17g', v) "
        "elseif type(v) == 'table' then local o = {} for k, x in pairs(v) do "
        "o[#o+1] = tostring(k) .. '=' .. tostring(x) end v = '{' .. table.concat(o, ',') .. '}' "
        "elseif type(v) ~= 'string' then v = tostring(v) end r[#r+1] = v end return r end ")

STRUCT_CASES = [
    ev("return struct.pack('>bBhHlLi3I5', -1, 255, -2, 513, -3, 2^40, -70000, 2^33)"),
    ev("return struct.pack('<bBhHlLTi16I1', 1, 2, 3, 4, -2^63, 2^64 - 2^11, 5, -1, 300)"),
    ev("return struct.pack('!4bi!8bd', 1, 2, 3, 1.5)"),
    ev("return struct.pack('<fd>fd', 0.1, 0.1, -1/0, 2^-1074)"),
    ev("return struct.pack('f', 3.5e38)"), ev("return struct.pack('ff', 1e-46, -1e-46)"),
    ev("return struct.pack('c3sc0x', 'abcdef', 'z\\0y', 'tail')"),
    ev("return struct.pack('lLlL', 2^64, 0/0, -2^64, 1/0)"),
    ev("return struct.pack('i', '0x10')"), ev("return struct.pack('i', 12.9)"),
    ev(SHOW + "return show(struct.unpack('>bBhHlLi3I5', struct.pack('>bBhHlLi3I5', -1, 255, "
       "-2, 513, -3, 2^40, -70000, 2^33)))"),
    ev(SHOW + "return show(struct.unpack('<i9i16I12', string.rep('\\255', 37)))"),
    ev(SHOW + "return show(struct.unpack('LlTd', string.rep('\\255', 8) .. "
       "string.rep('\\128', 8) .. string.rep('\\1', 16)))"),
    ev(SHOW + "return show(struct.unpack('fdfd', struct.pack('fdfd', 0.1, 0.1, 0/0, -(0/0))))"),
    ev(SHOW + "return show(struct.unpack('bc0s', '\\3abcxyz\\0rest'))"),
    ev(SHOW + "return show(struct.unpack('!8bd', struct.pack('!8bd', 7, 2.5)))"),
    ev(SHOW + "return show(struct.unpack('bb', 'abcd', 3))"),
    ev(SHOW + "return show(struct.unpack('', 'abcd', -1))"),
    ev(SHOW + "return show(struct.unpack('c1c0', '2xyz'))"),
    ev("return {struct.size('bhi!4d'), struct.size('<>xc5I3'), struct.size(''), "
       "struct.size('y')}"),
    ev("return struct.size('s')"), ev("return struct.size('c0')"), ev("return struct.size('#')"),
    ev("return struct.pack('i33', 1)"), ev("return struct.pack('i99999999999', 1)"),
    ev("return struct.pack('!3', 1)"), ev("return struct.pack('y', 1)"),
    ev("return struct.pack('i')"), ev("return struct.pack('ii', 1)"),
    ev("return struct.pack('i', {})"), ev("return struct.pack('c5', 'ab')"),
    ev("return struct.pack()"), ev("return struct.pack({})"),
    ev("return struct.unpack('i', 'ab')"), ev("return struct.unpack('i', 'abcd', 0)"),
    ev("return struct.unpack('i', 'abcd', -1)"), ev("return struct.unpack('s', 'abc')"),
    ev("return struct.unpack('c0', 'abc')"), ev("return struct.unpack('bc0', '\\9abc')"),
    ev("return struct.unpack('i', 'abcd', 'x')"), ev("return struct.unpack('i')"),
    ev("return struct.unpack('b', 1)"), ev("return struct.pack('b\\0b', 1, 2)"),
]

CMSGPACK_CASES = [
    ev("return cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 2^32 - 1, 2^32, 2^53, "
       "2^62)"),
    ev("return cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1, "
       "-2^53, -2^63)"),
    ev("return cmsgpack.pack(0.5, 0.1, -1.5, 1/0, -1/0, 0/0, -0, 2^63, -2^64, 1e300, 3.5e38, "
       "1e-45)"),
    ev("return cmsgpack.pack('', 'x', string.rep('a', 31), string.rep('b', 32), "
       "string.rep('c', 256), #string.rep('d', 65536))"),
    ev("return #cmsgpack.pack(string.rep('d', 65536))"),
    ev("return cmsgpack.pack(true, false, nil, cjson.null, print, redis.call, "
       "coroutine.create(function() end))"),
    ev("return cmsgpack.pack({}, {1, 2, 3}, {1, nil, 3}, {[1] = 'a', [3] = 'c'}, {a = 1}, "
       "{[1.5] = 1}, {[0] = 1}, {[2^31] = 1})"),
    ev("local t = {} for i = 1, 16 do t[i] = i end local m = {} for i = 1, 16 do "
       "m['k' .. i] = i end return cmsgpack.pack(t, m)"),
    ev("local t = {} for i = 1, 70000 do t[i] = 1 end return #cmsgpack.pack(t)"),
    ev("local t = {} t[1] = t return cmsgpack.pack(t)"),
    ev("local a = {} local b = {a} a[1] = b return cmsgpack.pack(a)"),
    ev("return cmsgpack.pack({x = {y = {z = {1, 2, {w = true}}}}})"),
    ev("return #cmsgpack.pack(_G, string, cjson)"),
    ev(SHOW + "return show(cmsgpack.unpack(cmsgpack.pack(1, -1, 0.1, 2^40, -2^40, 'x', true, "
       "false, 1.5)))"),
    ev(SHOW + "return show(cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255"
       "\\255\\255\\211\\128\\0\\0\\0\\0\\0\\0\\1\\206\\255\\255"
       "\\255\\255\\210\\128\\0\\0\\0'))"),
    ev(SHOW + "return show(cmsgpack.unpack('\\202\\127\\192\\0\\0\\203\\255\\248"
       "\\0\\0\\0\\0\\0\\0\\202\\0\\0\\0\\1'))"),
    ev(SHOW + "return show(cmsgpack.unpack('\\147\\1\\192\\3\\130\\161a\\1\\1"
       "\\2\\220\\0\\1\\5\\222\\0\\0\\217\\2hi\\218\\0\\1x\\219\\0"
       "\\0\\0\\1y'))"),
    ev(SHOW + "return show(cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3)))"),
    ev(SHOW + "return show(cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2))"),
    ev(SHOW + "return show(cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2))"),
    ev(SHOW + "return show(cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 5, 1))"),
    ev(SHOW + "return show(cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 0, 0))"),
    ev(SHOW + "return show(cmsgpack.unpack_one(''))"),
    ev(SHOW + "return show(cmsgpack.unpack(''))"),
    ev("return cmsgpack.unpack('\\193')"), ev("return cmsgpack.unpack('\\196\\1a')"),
    ev("return cmsgpack.unpack('\\205\\1')"), ev("return cmsgpack.unpack('\\146\\1')"),
    ev("return cmsgpack.unpack('\\219\\0\\0\\1\\0ab')"),
    ev("return cmsgpack.unpack('\\129\\192\\1')"),
    ev("return cmsgpack.unpack('\\129\\203\\255\\248\\0\\0\\0\\0\\0\\0\\1')"),
    ev("return cmsgpack.unpack_one('abc', -1)"), ev("return cmsgpack.unpack_one('abc', 4)"),
    ev("return cmsgpack.unpack_limit('abc', -1)"), ev("return cmsgpack.unpack_limit('abc')"),
    ev("return cmsgpack.unpack_one('abc', 'x')"), ev("return cmsgpack.unpack()"),
    ev("return cmsgpack.unpack({})"), ev("return cmsgpack.pack()"),
    ev("return select('#', cmsgpack.unpack(string.rep('\\1', 9000)))"),
    ev("return cmsgpack.unpack(string.rep('\\145', 5000) .. '\\1')"),
    ev("local t = {} for i = 1, 5000 do t[i] = i end return cmsgpack.pack(unpack(t))"),
]

CASES = [
    Case("eval-conversions", [
        ev("return {1,2,3.7,nil,4}"), ev("return {err='My Error'}"), ev("return {ok='fine'}"),
        ev("return true"), ev("return false"), ev("return nil"),
        ev("return {1, {2, 'x', {err='e'}}, true, false}"),
        ev("return {1e20, -1e20, 0/0, 1/0, -1/0, 2^53+1, -0.5, 3.99, -3.99}"),
        ev("return 0x10"), ev("return -0"), ev("return '\\0abc'"), ev("return {'a', 1, 'b'}"),
        ev("local a = {} a[1] = 1 a[3] = 3 return a"), ev("return {1, 2, nil, 4}"),
        ev("return redis.status_reply('a\\r\\nb')"), ev("return {ok='x', err='y'}"),
        ev("return {double=3}"), ev("return {map={a=1}}"), ev("return {set={b=true}}"),
        ev("local t = setmetatable({}, {__index=function() return 1 end}) return t"),
        ev("return {function() end, coroutine.create(function() end)}")]),
    Case("eval-keys-argv", [
        ev("return KEYS[1]..ARGV[1]", "1", "k", "a"),
        ev("return {KEYS, ARGV}", "2", "k1", "k2", "a1", "a2", "a3"),
        ev("return #KEYS + #ARGV"), ev("KEYS[1] = 'x' return KEYS[1]", "1", "k"),
        ev("return {KEYS[1], ARGV[1]}", "0", b"\x00\r\n"),
        ("EVAL", "return 1"), ("EVAL", "return 1", "2", "a"), ("EVAL", "return 1", "-1", "a"),
        ("EVAL", "return 1", "x"), ("EVAL", "return 1", "9223372036854775808"),
        ("EVAL",), ("eval", "return 'lower'", "0")]),
    Case("eval-redis-call", [
        ("SET", "str", "hello"), ("SET", "num", "10"),
        ev("return redis.call('set', KEYS[1], ARGV[1])", "1", "k", "v"),
        ev("return redis.call('get', KEYS[1])", "1", "k"), ev("return redis.call('get', 'nokey')"),
        ev("return {redis.call('get', 'nokey')}"), ev("return type(redis.call('get', 'nokey'))"),
        ev("return {redis.call('set', 'a', 'b', 'get')}"),
        ev("return redis.call('mget', 'a', 'nokey', 'str')"),
        ev("return redis.call('incrbyfloat', 'f', '1.5')"), ev("return redis.call('ttl', 'a')"),
        ev("return tonumber(redis.call('get', 'num')) + 1"),
        ev("return redis.call('incrby', 'num', ARGV[1])", "0", "5"),
        ev("redis.call('set', 'n', 3.5) return redis.call('get', 'n')"),
        ev("redis.call('set', 'n', 0.1) return redis.call('get', 'n')"),
        ev("redis.call('set', 'n', 1e20) return redis.call('get', 'n')"),
        ev("redis.call('set', 'n', 1/0) return redis.call('get', 'n')"),
        ev("redis.call('set', 'n', 2^53) return redis.call('get', 'n')"),
        ev("return redis.call('getrange', 'str', 0.5, 1)"), ev("return redis.call('ping')"),
        ev("return redis.call('PING', 'x')"), ev("return redis.call('exists', 'a', 'a')"),
        ev("return redis.call('info'):sub(1, 8)"), ev("return redis.call('command', 'count') > 0"),
        ev("return redis.call('setbit', 'b', 7, 1) + redis.call('bitcount', 'b')")]),
    Case("eval-redis-call-errors", [
        ("SET", "str", "hello"), ev("return redis.call('incr', 'str')"),
        ev("redis.call('incr', 'str')"), ev("return redis.pcall('incr', 'str')"),
        ev("local r = redis.pcall('incr', 'str') return type(r) .. tostring(r.err)"),
        ev("return redis.call('incr')"), ev("return redis.call()"), ev("return redis.pcall()"),
        ev("return redis.call(1)"), ev("return redis.call('get', {})"),
        ev("return redis.pcall('get', {})"), ev("return redis.call('nosuch')"),
        ev("return redis.pcall('nosuch', 'a')"), ev("return redis.pcall('get')"),
        ev("return tostring(redis.pcall('incr', 'str').ignore_error_stats_update)"),
        ev("local ok, e = pcall(redis.call, 'incr', 'str') return {tostring(ok), type(e), e}"),
        ev("return redis.call('get', 'a', 'b')")]),
    Case("eval-noscript-commands", [
        ev("return redis.call('auth', 'x')"), ev("return redis.call('eval', 'return 1', 0)"),
        ev("return redis.call('evalsha', '" + RETURN_ONE_SHA + "', 0)"),
        ev("return redis.call('script', 'load', 'return 1')"),
        ev("return redis.call('script', 'help')[1]"), ev("return redis.call('client', 'id')"),
        ev("return redis.call('client', 'help')[1]"), ev("return redis.call('hello')"),
        ev("return redis.call('quit')"), ev("return redis.call('shutdown')"),
        ev("return redis.call('save')"), ev("return redis.call('config', 'get', 'maxmemory')"),
        ev("return redis.call('reset')"), ev("return redis.call('bgsave')")]),
    Case("eval-errors", [
        ev("error('boom')"), ev("error({err='boom'})"), ev("error()"), ev("error(12)"),
        ev("error('x', 0)"), ev("error('x', 2)"), ev("error({err=12})"),
        ev("return 'x' .."), ev("return x x"), ev("x = 5"), ev("return y"),
        ev("local ok, e = pcall(function() return nil + 1 end) return e"),
        ev("local ok, e = pcall(function() local x = nil; return x.y end) return e"),
        ev("local ok, e = pcall(error, {foo='x'}) return type(e)"),
        ev("local ok, e = pcall(error, {err='x'}) return e"),
        ev("local ok, e = xpcall(function() error({err='x'}) end, function(e) return e end) "
           "return type(e)"),
        ev("local f = coroutine.wrap(function() error('in co') end) f()"),
        ev("local f = coroutine.wrap(function() error({err='tbl'}) end) f()"),
        ev("\n\nerror('third line')"), ev("local function f()\nerror('in f')\nend\nf()")]),
    Case("eval-redis-api", [
        ev("return redis.error_reply('My Error')"), ev("return redis.error_reply('-My Error')"),
        ev("return redis.error_reply('')"), ev("return redis.error_reply('-')"),
        ev("return redis.error_reply('X\\r\\n')"), ev("return redis.status_reply('Fine')"),
        ev("return redis.error_reply()"), ev("return redis.error_reply(1)"),
        ev("return redis.status_reply(1)"), ev("return redis.sha1hex()"),
        ev("return redis.sha1hex(1)"), ev("return redis.sha1hex('abc')"),
        ev("return redis.log()"), ev("return redis.log('a', 'b')"), ev("return redis.log(99, 'b')"),
        ev("return redis.log(redis.LOG_DEBUG, 'from a script', 3)"),
        ev("return redis.setresp(4)"), ev("return redis.setresp()"),
        ev("return redis.REDIS_VERSION_NUM"), ev("return redis.REDIS_VERSION"),
        ev("return redis.breakpoint()"), ev("return redis.replicate_commands()"),
        ev("return redis.set_repl(redis.REPL_ALL)"), ev("return redis.set_repl(9)"),
        ev("return redis.set_repl()"), ev("return redis.acl_check_cmd('get', 'a')"),
        ev("return redis.acl_check_cmd('nosuch')"),
        ev("redis.setresp(3) return {true, false, redis.call('get', 'nokey')}"),
        ev("redis.setresp(3) return type(redis.call('get', 'nokey'))"),
        ev("redis.setresp(3) return redis.call('set', 'k', 'v')")]),
    Case("eval-lua-library", [
        ev("local s = 0 for i = 1, 1000 do s = s + i end return s"),
        ev("return string.rep('ab', 3)"), ev("return ('x'):upper()"),
        ev("return string.format('%d %s %5.2f', 3, 'x', 1.5)"),
        ev("return table.concat({1, 2, 3}, ',')"), ev("local t = {3,1,2} table.sort(t) return t"),
        ev("local t = {} table.insert(t, 1) table.insert(t, 1, 0) return t"),
        ev("return math.floor(3.7)"), ev("return tostring(nil)"),
        ev("return {unpack({1, 2, 3})}"), ev("return select('#', 1, 2, 3)"),
        ev("return type(coroutine.create(function() end))"),
        ev("local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) "
           "return b * 2 end) local _, x = coroutine.resume(co, 1) "
           "local _, y = coroutine.resume(co, 10) return {x, y}"),
        ev("return _VERSION"), ev("return type(_G)"), ev("return _G.redis == redis"),
        ev("return rawget(_G, 'nothing')"), ev("return type(rawget(_G, 'redis'))"),
        ev("return gcinfo() > 0"), ev("return collectgarbage('count') > 0"),
        ev("return type(getmetatable(_G))"), ev("return type(getmetatable(''))"),
        ev("return {loadstring('return 1')()}"), ev("return {loadstring('return x')()}"),
        ev("return select(2, loadstring('x x'))"), ev("return select(2, load('return 1'))"),
        ev("return type(load(function() return nil end))"),
        ev("local t = {} for k in pairs(string) do t[#t+1]=k end table.sort(t) return t"),
        ev("local t = {} for k in pairs(redis) do t[#t+1]=k end table.sort(t) return t"),
        ev("local t = {} for k in pairs(math) do t[#t+1]=k end table.sort(t) return t"),
        ev("local t = {} for k in pairs(table) do t[#t+1]=k end table.sort(t) return t"),
        ev("local t = {} for k in pairs(coroutine) do t[#t+1]=k end table.sort(t) return t")]),
    Case("eval-cjson", [
        ev("return cjson.encode({1,2,'a',{x=1},true,false,cjson.null, 0."
           '1, 1e20, -0, 1/3, \'q"\\\\/\\b\\f\\n\\r\\t\\1\\127\\200\'})'),
        ev('return cjson.encode({})'),
        ev('return cjson.encode({[1]=1,[3]=3})'),
        ev('return cjson.encode({[1]=1,[20]=3})'),
        ev('return cjson.encode({[true]=1})'),
        ev('return cjson.encode(function() end)'),
        ev('return cjson.encode(0/0)'),
        ev('return cjson.encode({[1.5]=1, [2]=2})'),
        ev('return cjson.encode()'),
        ev('return cjson.encode(nil)'),
        ev("return cjson.encode('x', 'y')"),
        ev('local t = cjson.decode(\'{"a":[1,2,{"b":null}],"c":"x\\\\u00e9\\'
           '\\n","d":true,"e":1.5e3}\') return {t.a[1], t.a[3].b == cjson.'
           'null, t.c, tostring(t.d), t.e}'),
        ev("return cjson.decode('[1,]')"),
        ev("return cjson.decode('[1 2]')"),
        ev("return cjson.decode('{1:2}')"),
        ev("return cjson.decode('')"),
        ev("return cjson.decode('[1] x')"),
        ev('return cjson.decode(\'"\\\\q"\')'),
        ev("return cjson.decode('01')"),
        ev("return cjson.decode('0x10')"),
        ev("return cjson.decode('-')"),
        ev('return {cjson.decode(\'"\\\\ud83d\\\\ude00"\')}'),
        ev('return {cjson.null}'),
        ev('local t = {} for k in pairs(cjson) do t[#t+1]=k end table.sort(t) return t'),
        ev('return cjson.decode(1)'),
        ev("return cjson.decode('[' .. string.rep('[', 1001) .. string.rep(']', 1001) .. ']')"),
        ev('return cjson.encode({a={b={c=1}}})'),
        ev('return cjson.encode({b=1,a=2,c=3,d=4,e=5})'),
        ev('return {cjson._NAME, cjson._VERSION, cjson.encode_max_depth('
           '), cjson.decode_max_depth(), cjson.encode_number_precision()'
           ', tostring(cjson.encode_keep_buffer()), tostring(cjson.encod'
           'e_invalid_numbers()), tostring(cjson.decode_invalid_numbers('
           '))}'),
        ev('return {cjson.encode_sparse_array()}'),
        ev('return type(cjson.new)'),
        ev('return cjson.encode({1,2,3,[5]=5})'),
        ev('return cjson.encode(setmetatable({}, {__index=function() return 1 end}))'),
        ev("return cjson.decode('[1,2]')[2]"),
        ev('return cjson.decode(\'{"a":1}\').a'),
        ev('return cjson.encode(cjson.decode(\'{"user":{"id":7,"tags":["a'
           '","b"],"score":1.25,"active":false,"meta":{}}}\'))'),
        ev("return cjson.encode({name='x', list={1,2,3}, nested={{a=1},{b=2}}, n=-12.5e-7})"),
        ev('return cjson.decode(\'  [ 1 , "two" , { "three" : 3 } ]  \')[3].three'),
        ev('return cjson.decode(\'{"a":"b"\')'),
        ev('return cjson.decode(\'"abc\')'),
        ev("return cjson.decode('[1e400]')[1] > 1"),
        ev("return cjson.decode('nul')"),
        ev("return cjson.decode('tru')"),
        ev("return cjson.decode('[-0.5, 1E2, 2e-2]')"),
        ev('return cjson.encode(cjson.decode(\'"\\\\u0041\\\\u00df\\\\u4e2d"\'))'),
        ev('return cjson.decode(\'"\\\\ud83d"\')'),
        ev("return cjson.encode(string.rep('x', 10))"),
        ev('return cjson.encode({[-1]=1})'),
        ev('return cjson.encode({[0]=1})'),
        ev('return cjson.encode({1, nil, 3})'),
        ev('local t = {} t[1] = t return cjson.encode(t)'),
        ev('return cjson.decode(\'{"a":1,"a":2}\').a'),
        ev("return cjson.decode('[] ')"),
        ev("return cjson.encode(cjson.decode('{}'))"),
        ev("return cjson.encode(cjson.decode('[]'))"),
        ev("return cjson.decode('+1')"),
        ev("return cjson.decode('inf')"),
        ev("return cjson.decode('.5')"),
        ev("return cjson.decode('1.')"),
        ev('return cjson.decode(\'{"a":}\')'),
        ev('return cjson.decode(\'{"a" 1}\')'),
        ev("return cjson.decode('[1}')"),]),
    Case("eval-cjson-null", [
        ev("return type(cjson.null)"), ev("return tostring(cjson.null)"),
        ev("return getmetatable(cjson.null)"), ev("return cjson.null.x"),
        ev("return {cjson.encode({1, cjson.null}), cjson.decode('[null]')[1] == cjson.null}"),
        ev("local x = rawset(cjson.null, 'x', 1)"), ev("local x = next(cjson.null)"),
        ev("return cjson.null < cjson.null"), ev("return cjson.null .. 'x'"),
        ev("return cjson.null()"), ev("local t = {[cjson.null] = 1} return t[cjson.null]"),
        ev("local x = getmetatable()"), ev("return cjson.null")]),
    # SWAPDB from a script: the script's own database follows the swap, as its caller's does.
    Case("eval-swapdb", [
        ("SET", "k", "zero"), ("SELECT", "1"), ("SET", "k", "one"), ("SELECT", "0"),
        ev("redis.call('swapdb', 0, 1) return redis.call('get', 'k')"), ("GET", "k"),
        ev("redis.call('select', 1) redis.call('swapdb', 0, 1) return {redis.call('get', 'k'), "
           "redis.call('select', 0), redis.call('get', 'k')}"), ("GET", "k"),
        ("SELECT", "1"), ev("redis.call('swapdb', 1, 2) return redis.call('get', 'k')"),
        ("GET", "k"), ev("return redis.call('swapdb', 1, 99)"),
        ev("return redis.pcall('swapdb', 'x', 1)")]),
    Case("eval-struct", STRUCT_CASES),
    Case("eval-cmsgpack", CMSGPACK_CASES),
    Case("eval-bit", [
        ev('return {bit.tobit(0xffffffff), bit.tobit(2^32+5), bit.tobit('
           '1.5), bit.tobit(2.5), bit.tobit(-2.5), bit.tobit(-1), bit.to'
           'hex(255), bit.tohex(-1, -4), bit.tohex(1, 2), bit.tohex(1, 2'
           '0), bit.bnot(0), bit.band(0xff, 0x0f, 0x3), bit.bor(1, 2, 4)'
           ', bit.bxor(5, 3), bit.lshift(1, 31), bit.lshift(1, 32), bit.'
           'rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 4)'
           ", bit.ror(0x12345678, 4), bit.bswap(0x12345678), bit.band('7"
           "', 3)}"),
        ev('return bit.band()'),
        ev('return bit.band(nil)'),
        ev('return bit.band(1, {})'),
        ev("return bit.tohex('x')"),
        ev('local t = {} for k in pairs(bit) do t[#t+1]=k end table.sort'
           '(t) return t'),
        ev('return {bit.tobit(-2^31), bit.tobit(2^31), bit.bor(5)}'),
        ev('return {bit.tohex(-1, 0), bit.tohex(0x1234, -8), bit.lshift('
           '3, -1), bit.rshift(8, 33)}'),
        ev('return bit.tohex(1, nil)'),
        ev('local r = {} for i = 0, 40 do r[#r+1] = bit.rol(0x80000001, '
           'i) r[#r+1] = bit.ror(0x80000001, i) r[#r+1] = bit.arshift(-1'
           '2345, i) r[#r+1] = bit.rshift(-12345, i) r[#r+1] = bit.lshif'
           't(-12345, i) end return r'),
        ev('local r = {} local x = 12345 for i = 1, 200 do x = bit.bxor('
           'bit.band(x * 1103515245 + 12345, 0x7fffffff), bit.rshift(x, '
           '3)) r[#r+1] = x r[#r+1] = bit.bnot(x) r[#r+1] = bit.bor(x, i'
           ') r[#r+1] = bit.tohex(x) r[#r+1] = bit.bswap(x) end return r'),
        ev('return {bit.tobit(0.5), bit.tobit(-0.5), bit.tobit(1e10), bi'
           't.tobit(-1e10), bit.tobit(3.5), bit.tobit(-3.5)}'),
        ev('return bit.lshift(1)'),
        ev("return bit.band(1, 'x')"),]),
    Case("eval-globals", [
        ev("local t = {} for k in pairs(_G) do t[#t+1]=k end table.sort(t) return t"),
        ev("local t = {} for k, v in pairs(cmsgpack) do t[#t+1] = k .. '=' .. (type(v) == "
           "'string' and v or '') end table.sort(t) return t"),
        ev("local t = {} for k in pairs(struct) do t[#t+1] = k end table.sort(t) return t"),
        ev("struct.x = 1"), ev("cmsgpack.pack = nil")]),
    Case("eval-sandbox", [
        ev("rawset(_G, 'x', 1)"), ev("string.foo = 1"), ev("setmetatable(_G, nil)"),
        ev("getmetatable('').__index = nil"), ev("table.insert(_G, 1)"),
        ev("table.insert(string, 'x')"), ev("redis.call = nil"),
        ev("return loadstring(string.dump(function() return 1 end))()"),
        ev("return select(2, loadstring(string.dump(function() end)))"),
        ev("return os"), ev("return io"), ev("return debug"), ev("return require"),
        ev("return print"), ev("return dofile"), ev("return loadfile"), ev("return module"),
        ev("return package"), ev("return setfenv"), ev("return getfenv"), ev("return newproxy"),
        ev("return python"), ev("\27Lua")]),
    Case("eval-shebang", [
        ev("#!lua\nreturn 1"), ev("#!lua flags=no-writes\nreturn redis.call('get', 'a')"),
        ev("#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')"),
        ev("#!lua flags=no-writes,allow-oom\nreturn 1"), ev("#!lua flags=\nreturn 1"),
        ev("#!lua  flags=no-writes\nreturn 2"), ev("#!lua"), ev("#!luax\nreturn 1"),
        ev("#!foo\nreturn 1"), ev("#!lua flags=bar\nreturn 1"), ev("#!lua name=x\nreturn 1"),
        ev("#!lua flags=no-cluster\nreturn 1"), ev("#!lua\nx = 1"),
        ev("#!lua\nreturn redis.call('get', KEYS[1])")]),
    Case("eval-ro", [
        ("SET", "a", "1"), ("EVAL_RO", "return redis.call('get', KEYS[1])", "1", "a"),
        ("EVAL_RO", "return redis.call('set', 'a', 'b')", "0"),
        ("EVAL_RO", "return redis.pcall('del', 'a')", "0"), ("GET", "a"),
        ("SCRIPT", "LOAD", "return redis.call('incr', 'a')"),
        ("EVALSHA_RO", "1a2a2fba9b22c36e3bd2398f70e8a5a6fa6d0a39", "0"),
        ("EVALSHA_RO", RETURN_ONE_SHA, "0"), ("EVAL_RO", "return 1"), ("EVALSHA_RO", "x", "0")]),
    Case("evalsha-and-script", [
        ("SCRIPT", "FLUSH"), ("EVALSHA", RETURN_ONE_SHA, "0"),
        ("SCRIPT", "EXISTS", RETURN_ONE_SHA, "ffff"), ("SCRIPT", "LOAD", "return 1"),
        ("SCRIPT", "EXISTS", RETURN_ONE_SHA.upper(), RETURN_ONE_SHA, "nope"),
        ("EVALSHA", RETURN_ONE_SHA, "0"), ("EVALSHA", RETURN_ONE_SHA.upper(), "0"),
        ("EVALSHA", RETURN_ONE_SHA, "x"), ("EVALSHA", RETURN_ONE_SHA, "1"),
        ("EVALSHA", "fff", "x"), ("EVALSHA", "f" * 40, "0"), ("EVALSHA", "f" * 40, "x"),
        ("EVAL", "return 2", "0"), ("SCRIPT", "EXISTS", "7f923f79fe76194c868d7e1d0820de36700eb649"),
        ("EVALSHA", "7f923f79fe76194c868d7e1d0820de36700eb649", "0"),
        ("SCRIPT", "LOAD", "x x"), ("SCRIPT", "LOAD", "#!lua flags=bad\nreturn 1"),
        ("SCRIPT", "FLUSH", "ASYNC"), ("SCRIPT", "EXISTS", RETURN_ONE_SHA),
        ("SCRIPT", "FLUSH", "sync"), ("SCRIPT", "FLUSH", "x"), ("SCRIPT", "FLUSH", "sync", "x"),
        ("SCRIPT", "KILL"), ("SCRIPT", "KILL", "x"), ("SCRIPT", "LOAD"), ("SCRIPT", "EXISTS"),
        ("SCRIPT", "HELP"), ("SCRIPT", "HELP", "x"), ("SCRIPT", "BOGUS"), ("SCRIPT",),
        ("script", "load", "return 1"), ("EVALSHA",), ("EVALSHA", RETURN_ONE_SHA),
        ("SCRIPT", "DEBUG", "no"), ("SCRIPT", "DEBUG", "bogus"), ("SCRIPT", "DEBUG")]),
    Case("scripting-command-info", [
        Req(("COMMAND", "INFO", "eval", "evalsha", "eval_ro", "evalsha_ro", "script"),
            command_info),
        Req(("COMMAND", "DOCS", "eval", "script"), command_docs)]),
]
