/* Fields of an audit record line read without a JSON parser, as `kuractl audit` filters and
 * shows a log of millions of lines, and the times its filters take. No plaintext: records never
 * hold a value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit-line.h"
#include "escape.h"

/*
 * The value of "key" in a record line as append writes it (compact, flat, jansson's escapes):
 * for a string its bytes between the quotes, still escaped; otherwise the bare token. A key's
 * pattern "key": cannot occur inside a string (every '"' there is escaped), so the first hit
 * is the member.
 */
bool kura_audit_field(const char *l, size_t len, const char *key, const char **ret, size_t *ret_len)
{
	char pat[40];
	const char *p, *end = l + len, *v;
	int n = snprintf(pat, sizeof(pat), "\"%s\":", key);

	p = memmem(l, len, pat, (size_t)n);
	if (!p)
		return false;
	v = p + n;
	if (v < end && *v == '"') {
		const char *q = ++v;

		while (q < end && *q != '"')
			q += *q == '\\' ? 2 : 1;
		if (q >= end)
			return false;
		*ret = v;
		*ret_len = (size_t)(q - v);
		return true;
	}
	p = v;
	while (p < end && *p != ',' && *p != '}')
		p++;
	*ret = v;
	*ret_len = (size_t)(p - v);
	return p > v;
}

static unsigned hex4(const char *p)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		char h = p[k];

		v = v * 16 +
			(unsigned)(h >= 'a'      ? h - 'a' + 10 :
					h >= 'A' ? h - 'A' + 10 :
						   h - '0');
	}
	return v;
}

static size_t put_utf8(unsigned cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A JSON string's escaped bytes p[0..n) decoded into out (cap > 4; cut to fit); its length.
 * A lone surrogate comes out as the bytes of one, which is not UTF-8 (and is escaped). */
static size_t decode(const char *p, size_t n, char *out, size_t cap)
{
	static const char from[] = "nrtbf", to[] = "\n\r\t\b\f";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 4 < cap; i++) {
		const char *e;
		unsigned cp;

		if (p[i] != '\\' || i + 1 >= n) {
			out[o++] = p[i];
			continue;
		}
		i++;
		if (p[i] != 'u' || i + 4 >= n) {
			e = strchr(from, p[i]);
			out[o++] = e && *e ? to[e - from] : p[i]; /* \" \\ \/ */
			continue;
		}
		cp = hex4(p + i + 1);
		i += 4;
		if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < n && p[i + 1] == '\\' &&
			p[i + 2] == 'u') {
			unsigned lo = hex4(p + i + 3);

			if (lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
		}
		o += put_utf8(cp, out + o);
	}
	out[o] = 0;
	return o;
}

/*
 * A JSON string's escaped bytes as text, into out (always NUL-terminated, cut to fit). For
 * people (tty), escaped: names and reasons may come from peers and image authors.
 */
const char *kura_audit_unescape(const char *p, size_t n, char *out, size_t cap, bool tty)
{
	char raw[4096];
	size_t len;

	if (!tty) {
		decode(p, n, out, cap);
		return out;
	}
	len = decode(p, n, raw, sizeof(raw));
	return kura_escape(raw, len, KURA_ESCAPE_TEXT, out, cap);
}

const char *kura_audit_text(const char *l, size_t len, const char *key, char *out, size_t cap,
	bool tty)
{
	const char *v;
	size_t n;

	if (!kura_audit_field(l, len, key, &v, &n))
		return NULL;
	return kura_audit_unescape(v, n, out, cap, tty);
}

/* --- times ---------------------------------------------------------------------------------- */

static bool digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return false;
		v = v * 10 + (**p - '0');
	}
	*ret = v;
	return true;
}

static void format_time(int64_t sec, long usec, char out[KURA_AUDIT_TIME_LEN + 1])
{
	time_t t = (time_t)sec;
	char buf[64];
	struct tm tm;
	size_t n;

	if (!gmtime_r(&t, &tm) || tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900)
		tm = (struct tm){ .tm_year = 70, .tm_mday = 1 };
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%06dZ", (int)(usec % 1000000));
	memcpy(out, buf, KURA_AUDIT_TIME_LEN);
	out[KURA_AUDIT_TIME_LEN] = 0;
}

/* RFC 3339 (fraction and zone optional, no zone: UTC; a date alone: its midnight) or an age
 * (N followed by s, m, h, d or w), as the record's own time format. */
bool kura_audit_time_parse(const char *s, char out[KURA_AUDIT_TIME_LEN + 1])
{
	const char *p = s;
	int Y, M, D, h = 0, m = 0, sec = 0, oh = 0, om = 0, sign = 0;
	long usec = 0;
	struct tm tm = {};
	time_t t;
	size_t n = strspn(s, "0123456789");

	if (n > 0 && n < 10 && s[n] && !s[n + 1] && strchr("smhdw", s[n])) {
		static const int64_t unit[] = { ['s' - 'a'] = 1,
			['m' - 'a'] = 60,
			['h' - 'a'] = 3600,
			['d' - 'a'] = 86400,
			['w' - 'a'] = 604800 };
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		format_time((int64_t)now.tv_sec - strtoll(s, NULL, 10) * unit[s[n] - 'a'],
			now.tv_nsec / 1000, out);
		return true;
	}
	if (!digits(&p, 4, &Y) || *p++ != '-' || !digits(&p, 2, &M) || *p++ != '-' ||
		!digits(&p, 2, &D))
		return false;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &m))
			return false;
		if (*p == ':' && (p++, !digits(&p, 2, &sec)))
			return false;
		if (*p == '.') {
			int i = 0;

			for (p++; *p >= '0' && *p <= '9'; p++, i++)
				if (i < 6)
					usec = usec * 10 + (*p - '0');
			if (i == 0)
				return false;
			for (; i < 6; i++)
				usec *= 10;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '+' ? 1 : -1;
			if (!digits(&p, 2, &oh) || (*p == ':' && !++p) || !digits(&p, 2, &om) ||
				oh > 23 || om > 59)
				return false;
		}
	}
	if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return false;
	tm = (struct tm){ .tm_year = Y - 1900,
		.tm_mon = M - 1,
		.tm_mday = D,
		.tm_hour = h,
		.tm_min = m,
		.tm_sec = sec == 60 ? 59 : sec };
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != D)
		return false; /* 2026-02-30 */
	format_time((int64_t)t - sign * (oh * 3600 + om * 60), usec, out);
	return true;
}
