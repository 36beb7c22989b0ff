/* Bulk TCP sink for bench/published.sh, run inside a container (static, bind-mounted read-only).
 *
 * Usage: sink PORT
 * Listens on 0.0.0.0:PORT and serves one connection at a time: reads it to EOF with a 256 KiB
 * buffer, writes back the byte count as a decimal line and closes. The count lets the sender check
 * that every byte crossed the published port (a proxy or a DNAT that dropped or cut the stream
 * fails loudly instead of looking fast). A connection that errors gets no count, only a close.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[256 * 1024];

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: sink PORT\n");
		return 2;
	}
	char *end;
	long port = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "sink: bad port '%s'\n", argv[1]);
		return 2;
	}
	/* A sender that gives up must not kill the sink with SIGPIPE on the count write. */
	signal(SIGPIPE, SIG_IGN);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0) {
		perror("sink: socket");
		return 1;
	}
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
		perror("sink: bind/listen");
		return 1;
	}
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("sink: accept");
			return 1;
		}
		unsigned long long n = 0;
		ssize_t r;
		for (;;) {
			r = read(c, buf, sizeof buf);
			if (r > 0)
				n += (unsigned long long)r;
			else if (r < 0 && errno == EINTR)
				continue;
			else
				break;
		}
		if (r == 0) {
			char line[32];
			int len = snprintf(line, sizeof line, "%llu\n", n);
			if (write_all(c, line, (size_t)len) < 0)
				perror("sink: write count");
		} else {
			perror("sink: read");
		}
		close(c);
	}
}
