#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <time.h>

#include "common.h"

void
die(const char *fmt,...)
{
	va_list		ap;
	int			saved_errno = errno;

	fflush(stdout);
	fputs("txpipe: ", stderr);
	errno = saved_errno;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void
warn_msg(const char *fmt,...)
{
	va_list		ap;

	fputs("txpipe: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	   *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

uint64_t
parse_count(const char *value, const char *option)
{
	char	   *end;
	unsigned long long v;

	if (value[0] < '0' || value[0] > '9')
		die("%s: expected a non-negative integer, got \"%s\"", option, value);
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno != 0 || *end != '\0')
		die("%s: expected a non-negative integer, got \"%s\"", option, value);
	return (uint64_t) v;
}

double
parse_fraction(const char *value, const char *option)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(value, &end);
	if (errno != 0 || end == value || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		die("%s: expected a fraction between 0 and 1, got \"%s\"", option, value);
	return v;
}

double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

char *
one_line(char *msg)
{
	char	   *src = msg,
			   *dst = msg;
	int			space = 0;

	while (*src)
	{
		if (*src == '\n' || *src == '\t' || *src == '\r' || *src == ' ')
			space = (dst != msg);
		else
		{
			if (space)
				*dst++ = ' ';
			space = 0;
			*dst++ = *src;
		}
		src++;
	}
	*dst = '\0';
	return msg;
}

void
sb_init(strbuf *sb, size_t cap)
{
	sb->data = xmalloc(cap);
	sb->len = 0;
	sb->cap = cap;
}

void
sb_grow(strbuf *sb, size_t need)
{
	size_t		cap = sb->cap ? sb->cap : 64;

	while (cap < need)
		cap *= 2;
	sb->data = xrealloc(sb->data, cap);
	sb->cap = cap;
}

void
sb_free(strbuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

void
sb_put_u64(strbuf *sb, uint64_t v)
{
	char		tmp[24];
	int			n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	sb_reserve(sb, n);
	while (n > 0)
		sb->data[sb->len++] = tmp[--n];
}

void
sb_put_i64(strbuf *sb, int64_t v)
{
	if (v < 0)
	{
		sb_putc(sb, '-');
		sb_put_u64(sb, (uint64_t) 0 - (uint64_t) v);
	}
	else
		sb_put_u64(sb, (uint64_t) v);
}

void
sb_put_fixed(strbuf *sb, int64_t v, int decimals)
{
	uint64_t	mag;
	uint64_t	scale = 1;
	uint64_t	frac;
	char		tmp[24];
	int			i;

	for (i = 0; i < decimals; i++)
		scale *= 10;
	if (v < 0)
	{
		sb_putc(sb, '-');
		mag = (uint64_t) 0 - (uint64_t) v;
	}
	else
		mag = (uint64_t) v;
	sb_put_u64(sb, mag / scale);
	if (decimals == 0)
		return;
	sb_putc(sb, '.');
	frac = mag % scale;
	for (i = decimals - 1; i >= 0; i--)
	{
		tmp[i] = (char) ('0' + frac % 10);
		frac /= 10;
	}
	sb_put(sb, tmp, decimals);
}

void
sb_put_hex(strbuf *sb, uint64_t v, int ndigits)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	sb_reserve(sb, ndigits);
	for (i = ndigits - 1; i >= 0; i--)
		sb->data[sb->len + i] = hex[(v >> (4 * (ndigits - 1 - i))) & 15];
	sb->len += ndigits;
}

void
sb_put_json_string(strbuf *sb, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		i;

	sb_reserve(sb, len + 2);
	sb->data[sb->len++] = '"';
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
		{
			sb_putc(sb, '\\');
			sb_putc(sb, (char) c);
		}
		else if (c < 0x20)
		{
			switch (c)
			{
				case '\n':
					sb_put(sb, "\\n", 2);
					break;
				case '\r':
					sb_put(sb, "\\r", 2);
					break;
				case '\t':
					sb_put(sb, "\\t", 2);
					break;
				case '\b':
					sb_put(sb, "\\b", 2);
					break;
				case '\f':
					sb_put(sb, "\\f", 2);
					break;
				default:
					sb_put(sb, "\\u00", 4);
					sb_putc(sb, hex[c >> 4]);
					sb_putc(sb, hex[c & 15]);
			}
		}
		else
			sb_putc(sb, (char) c);
	}
	sb_putc(sb, '"');
}

void
hs_init(hashset *hs, size_t expected)
{
	size_t		cap = 64;

	while (cap < expected * 2)
		cap *= 2;
	hs->slots = xcalloc(cap, sizeof(uint64_t));
	hs->cap = cap;
	hs->n = 0;
}

static int
hs_insert(uint64_t *slots, size_t cap, uint64_t h)
{
	size_t		i = (size_t) (h * UINT64_C(0x9e3779b97f4a7c15)) & (cap - 1);

	while (slots[i] != 0)
	{
		if (slots[i] == h)
			return 0;
		i = (i + 1) & (cap - 1);
	}
	slots[i] = h;
	return 1;
}

int
hs_add(hashset *hs, uint64_t h)
{
	/* zero marks an empty slot */
	if (h == 0)
		h = 1;
	if ((hs->n + 1) * 2 > hs->cap)
	{
		size_t		cap = hs->cap * 2;
		uint64_t   *slots = xcalloc(cap, sizeof(uint64_t));
		size_t		i;

		for (i = 0; i < hs->cap; i++)
			if (hs->slots[i] != 0)
				hs_insert(slots, cap, hs->slots[i]);
		free(hs->slots);
		hs->slots = slots;
		hs->cap = cap;
	}
	if (!hs_insert(hs->slots, hs->cap, h))
		return 0;
	hs->n++;
	return 1;
}

void
hs_free(hashset *hs)
{
	free(hs->slots);
	hs->slots = NULL;
	hs->cap = hs->n = 0;
}

uint64_t
hash_bytes(const char *s, size_t n, uint64_t seed)
{
	/* FNV-1a, finished with a 64-bit mix for better spread */
	uint64_t	h = UINT64_C(0xcbf29ce484222325) ^ seed;
	size_t		i;

	for (i = 0; i < n; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64_C(0x100000001b3);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}
