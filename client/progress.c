#include <stdio.h>
#include <string.h>

#include "common.h"
#include "load.h"

#define BAR_WIDTH 30
#define REDRAW_SECONDS 0.25

void
progress_start(progress *p, int enabled, const char *label, int64_t total)
{
	p->enabled = enabled;
	p->label = label;
	p->total = total;
	p->started = now_seconds();
	p->last_draw = 0;
	p->drawn = 0;
}

static void
human_bytes(char *out, size_t size, double bytes)
{
	if (bytes >= 1e9)
		snprintf(out, size, "%.2f GB", bytes / 1e9);
	else
		snprintf(out, size, "%.1f MB", bytes / 1e6);
}

void
progress_update(progress *p, int64_t done, uint64_t records)
{
	double		now;
	double		elapsed;
	double		rate;
	char		done_s[32],
				total_s[32];
	const char *label;

	if (!p->enabled)
		return;
	now = now_seconds();
	if (now - p->last_draw < REDRAW_SECONDS)
		return;
	p->last_draw = now;
	elapsed = now - p->started;
	rate = elapsed > 0 ? records / elapsed : 0;
	/* keep the line short enough for an 80-column terminal */
	label = p->label;
	if (strlen(label) > 20)
		label += strlen(label) - 20;
	human_bytes(done_s, sizeof(done_s), (double) done);
	if (p->total > 0)
	{
		double		frac = (double) done / (double) p->total;
		char		bar[BAR_WIDTH + 1];
		int			fill,
					i;

		if (frac > 1)
			frac = 1;
		fill = (int) (frac * BAR_WIDTH);
		for (i = 0; i < BAR_WIDTH; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[BAR_WIDTH] = '\0';
		human_bytes(total_s, sizeof(total_s), (double) p->total);
		fprintf(stderr, "\r\033[K%s [%s] %3d%% %s/%s %.0f rec/s",
				label, bar, (int) (frac * 100), done_s, total_s, rate);
	}
	else
		fprintf(stderr, "\r\033[K%s %s %llu records %.0f rec/s",
				label, done_s, (unsigned long long) records, rate);
	fflush(stderr);
	p->drawn = 1;
}

void
progress_clear(progress *p)
{
	if (p->enabled && p->drawn)
	{
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->drawn = 0;
}
