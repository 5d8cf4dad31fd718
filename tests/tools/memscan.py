#!/usr/bin/env python3
# Test-only: searches a live process's memory for byte patterns (keys, canary values), reading
# every readable mapping of /proc/PID/maps through /proc/PID/mem (root). Touches key material:
# the patterns it is given, and whatever it reads.
#
#   memscan.py PID [LABEL=]HEX ...      patterns on the command line
#   memscan.py PID -f FILE              one "LABEL HEX" a line (tests/tools/keydump's output)
#
# Prints "found LABEL in MAPPING at +OFFSET (ADDRESS)" for each hit and a "# scanned" summary
# on stderr. Exit 1 if any pattern was found, 0 if none, 2 on usage, 3 when the process cannot
# be read at all. Mappings are streamed in chunks that overlap by the longest pattern's length
# less one, so a pattern across a chunk boundary is found and a big mapping needs no big buffer;
# a mapping that goes away or becomes unreadable while we read (a thread exiting) is skipped.
import sys

CHUNK = 1 << 20
SKIP = ('[vvar]', '[vvar_vclock]', '[vsyscall]')


def patterns_from(args):
    pats = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == '-f':
            if i + 1 >= len(args):
                raise ValueError('-f needs a file')
            with open(args[i + 1]) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith('#'):
                        label, _, hexv = line.rpartition(' ')
                        pats.append((label or hexv[:16], bytes.fromhex(hexv)))
            i += 2
            continue
        label, _, hexv = a.rpartition('=')
        pats.append((label or hexv[:16], bytes.fromhex(hexv)))
        i += 1
    for label, p in pats:
        if len(p) < 8:
            raise ValueError('pattern %s is shorter than 8 bytes: it would match by chance' %
                             label)
    return pats


def mappings(pid):
    with open('/proc/%d/maps' % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split('-'))
            perms = parts[1]
            name = parts[5].strip() if len(parts) > 5 else '[anon]'
            yield lo, hi, perms, name


def scan(pid, pats):
    overlap = max(len(p) for _, p in pats) - 1
    found = set()
    stats = {'mappings': 0, 'bytes': 0, 'skipped': 0}
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for lo, hi, perms, name in mappings(pid):
            if 'r' not in perms or name in SKIP:
                stats['skipped'] += 1
                continue
            stats['mappings'] += 1
            addr, tail = lo, b''
            while addr < hi:
                n = min(CHUNK, hi - addr)
                try:
                    mem.seek(addr)
                    data = mem.read(n)
                except OSError:
                    data = None
                if not data:
                    # Unreadable from here on (unmapped meanwhile, or an I/O hole): skip
                    # the rest of this mapping, start afresh after it.
                    stats['skipped'] += 1
                    break
                stats['bytes'] += len(data)
                buf = tail + data
                base = addr - len(tail)
                for label, p in pats:
                    at = buf.find(p)
                    while at >= 0:
                        found.add((label, name, lo, base + at))
                        at = buf.find(p, at + 1)
                tail = buf[-overlap:] if overlap else b''
                addr += len(data)
    return found, stats


def main(argv):
    if len(argv) < 3:
        print('usage: memscan.py PID [LABEL=]HEX... | -f FILE', file=sys.stderr)
        return 2
    try:
        pid = int(argv[1])
        pats = patterns_from(argv[2:])
    except ValueError as e:
        print('memscan: %s' % e, file=sys.stderr)
        return 2
    if not pats:
        print('memscan: no patterns', file=sys.stderr)
        return 2
    try:
        found, stats = scan(pid, pats)
    except OSError as e:
        print('memscan: process %d: %s' % (pid, e), file=sys.stderr)
        return 3
    for label, name, lo, addr in sorted(found):
        print('found %s in %s at +%#x (%#x)' % (label, name, addr - lo, addr))
    print('# scanned %d mappings, %d bytes, for %d patterns; %d unreadable or skipped' %
          (stats['mappings'], stats['bytes'], len(pats), stats['skipped']), file=sys.stderr)
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
