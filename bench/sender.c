/* Bulk TCP sender for bench/published.sh, run in a daemon's network namespace (the "host").
 *
 * Usage: sender IPV4 PORT BYTES
 * Connects, sends BYTES in 1 MiB writes, shuts down its write side, reads the decimal byte count
 * bench/sink.c answers with, and checks it equals BYTES (exit 1 with a message otherwise). Prints
 * the seconds from before connect() to the count received: the whole transfer, connection set-up
 * and the last byte's arrival at the receiver included, so nothing still sitting in a socket
 * buffer is counted as sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)
static char buf[CHUNK];

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned long long parse_u64(const char *s, const char *what) {
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0) {
		fprintf(stderr, "sender: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: sender IPV4 PORT BYTES\n");
		return 2;
	}
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
		fprintf(stderr, "sender: bad IPv4 address '%s'\n", argv[1]);
		return 2;
	}
	unsigned long long port = parse_u64(argv[2], "port");
	if (port < 1 || port > 65535) {
		fprintf(stderr, "sender: bad port '%s'\n", argv[2]);
		return 2;
	}
	a.sin_port = htons((unsigned short)port);
	unsigned long long total = parse_u64(argv[3], "byte count");
	/* A sink that goes away mid-stream must show as an error message, not a silent SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	memset(buf, 0xa5, sizeof buf);

	double t0 = now();
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0) {
		perror("sender: socket");
		return 1;
	}
	if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		fprintf(stderr, "sender: connect %s:%llu: %s\n", argv[1], port, strerror(errno));
		return 1;
	}
	unsigned long long left = total;
	while (left > 0) {
		size_t n = left < CHUNK ? (size_t)left : CHUNK;
		const char *p = buf;
		while (n > 0) {
			ssize_t w = write(s, p, n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "sender: write after %llu of %llu bytes: %s\n",
					total - left, total, strerror(errno));
				return 1;
			}
			p += w;
			n -= (size_t)w;
			left -= (unsigned long long)w;
		}
	}
	if (shutdown(s, SHUT_WR) < 0) {
		perror("sender: shutdown");
		return 1;
	}
	char line[64];
	size_t got = 0;
	for (;;) {
		if (got == sizeof line - 1) {
			fprintf(stderr, "sender: answer longer than %zu bytes\n", sizeof line - 1);
			return 1;
		}
		ssize_t r = read(s, line + got, sizeof line - 1 - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sender: reading the count: %s\n", strerror(errno));
			return 1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	double t1 = now();
	close(s);
	line[got] = '\0';
	char *end;
	errno = 0;
	unsigned long long counted = strtoull(line, &end, 10);
	if (got == 0 || end == line || *end != '\n' || end[1] != '\0' || errno != 0) {
		fprintf(stderr, "sender: no byte count from the sink (got %zu bytes: '%s')\n", got, line);
		return 1;
	}
	if (counted != total) {
		fprintf(stderr, "sender: the sink counted %llu bytes, %llu were sent\n", counted, total);
		return 1;
	}
	printf("%.6f\n", t1 - t0);
	return 0;
}
