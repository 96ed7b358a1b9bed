/*
 * txpipe stream: replays NDJSON files through txpipe.enqueue().
 */
#ifndef TXPIPE_STREAM_H
#define TXPIPE_STREAM_H

typedef struct stream_options
{
	const char *conninfo;
	const char *pipeline;
	char	  **files;
	int			n_files;
	double		rate;			/* records per second over all clients; 0: as fast as possible */
	int			batch;			/* records per enqueue call */
	int			clients;		/* connections */
} stream_options;

int			stream_files(const stream_options *opt);

#endif
