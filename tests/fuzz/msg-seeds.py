#!/usr/bin/env python3
# Writes fuzz-msg's seed corpus (tests/fuzz/corpus-msg/): one valid message of every type, as
# the target reads its input: [type][flags][descriptor?] then the body. Numbers come from
# broker/kurad/msg.h, so a renumbered enum regenerates the same messages.
#   python3 tests/fuzz/msg-seeds.py
import os
import re
import struct

here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, '..', '..', 'broker', 'kurad', 'msg.h')).read()


def enum(name):
    body = re.search(r'enum %s \{(.*?)\};' % name, src, re.S).group(1)
    body = re.sub(r'/\*.*?\*/', '', body, flags=re.S)
    names = re.findall(r'(KURA_\w+)', body)
    return {n: i + 1 for i, n in enumerate(names)}


T = enum('kura_msg_type')
F = enum('kura_msg_tag')


def u(tag, v):
    return struct.pack('=HHI', F['KURA_F_' + tag], 0, 8) + struct.pack('=Q', v)


def s(tag, text):
    b = text.encode() + b'\0'
    return struct.pack('=HHI', F['KURA_F_' + tag], 0, len(b)) + b


def raw(tag, b):
    return struct.pack('=HHI', F['KURA_F_' + tag], 0, len(b)) + b


RID = '0123456789abcdef'
CID = '0123456789abcdef' * 4
seeds = {
    'ask-fetch': ('ASK', 0, 1, [s('PATH', '/v1/secrets/db/password'), u('RAW', 1), s('RID', RID),
                                s('CLAIM', 'uid:1000')]),
    'ask-wait': ('ASK', 0, 1, [s('PATH', '/v1/whoami'), s('RID', RID), u('WAIT', 1),
                               s('CLAIM', 'container:docker:' + CID[:60])]),
    'principal': ('PRINCIPAL', 0, 1, [s('RID', RID)]),
    'principal-empty': ('PRINCIPAL', 0, 1, []),
    'filter': ('FILTER', 0, 0, [u('WATCH', 7), s('NAME', 'db/a'), s('NAME', 'db/b')]),
    'record': ('RECORD', 0, 0, [s('EVENT', 'fetch'), s('RESULT', 'denied'), s('CODE', 'no_grant'),
                                s('RID', RID), s('SECRET', 'db/password'), u('PID', 4242),
                                u('UID', 1000), u('GID', 1000), u('RUNTIME_KIND', 1),
                                s('CONTAINER', CID), u('COUNT', 2), s('DETAIL', 'uid 1000')]),
    'stats': ('STATS', 0, 0, [u('CONNECTIONS', 3), u('WATCHES', 1), u('PRINCIPALS', 2),
                              u('EVICTIONS', 0), u('REFUSED', 9), u('SUPPRESSED', 4)]),
    'commit': ('COMMIT', 0, 0, [u('RECORD', 1)]),
    'unwatch': ('UNWATCH', 0, 0, [u('WATCH', 7)]),
    'answer-error': ('ANSWER', 0, 0, [u('STATUS', 403), s('CODE', 'forbidden'),
                                      s('MESSAGE', 'no grant'), u('RECORD', 1), u('CLOSE', 1)]),
    'answer-json': ('ANSWER', 0, 0, [u('STATUS', 200), raw('BODY', b'{"names":["a"]}'),
                                     u('WATCH', 3), u('KIND', 1), u('UID', 0), s('NAME', 'a')]),
    'answer-secret': ('ANSWER', 1, 0, [u('STATUS', 200), u('RAW', 1), u('VERSION', 2),
                                       s('FINGERPRINT', 'ab' * 16), u('CREATED', 1700000000),
                                       raw('BODY', b'not-a-real-secret')]),
    'ready': ('READY', 0, 0, [u('REVISION', 12)]),
    'changed': ('CHANGED', 0, 0, [u('REVISION', 20), u('RESET', 0), s('NAME', 'a'), u('REV', 18),
                                  s('NAME', 'b'), u('REV', 19)]),
}
out = os.path.join(here, 'corpus-msg')
os.makedirs(out, exist_ok=True)
for name, (typ, flags, fd, fields) in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(bytes([T['KURA_MSG_' + typ], flags, fd]) + b''.join(fields))
