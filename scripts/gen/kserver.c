// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * kserver: the Linux-kernel baseline for scripts/bench-lab.sh, one epoll thread, with the
 * same behaviour as synack's listener modes:
 *   discard  - accept, read and drop, close when the client closes (synack `discard`);
 *   http     - answer each HTTP/1.x request (headers end at CRLFCRLF) with the same fixed
 *              response synack sends ("synack\n", keep-alive unless the request says
 *              Connection: close, then close after the response) (synack `http`).
 *
 * Usage: kserver ADDR PORT:MODE [PORT:MODE ...]   (e.g. kserver 198.18.0.1 9:discard 80:http)
 * Listens with backlog 65535; prints "ready" on stdout when all sockets listen. Runs until
 * SIGTERM/SIGINT. Pin it with taskset; it does no busy polling.
 *
 * Build: cc -O2 -o kserver kserver.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LISTEN 8
#define MAX_EVENTS 256
#define BUF 4096

enum mode { DISCARD = 0, HTTP = 1 };

static const char BODY[] = "synack\n";
static char resp_keep[256], resp_close[256];
static int resp_keep_len, resp_close_len;
static volatile sig_atomic_t stop;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

/* Per-fd state: mode + partial request bytes (a request split over segments). */
struct conn {
	int mode;
	int listener;
	int have;
	char req[BUF];
};
static struct conn *conns;
static int max_fd = 1 << 20;

static int listen_on(const char *addr, int port)
{
	int fd, one = 1;
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -1;
		len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -1;
		len = sizeof *s4;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 65535) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Serve complete requests in c->req; returns 1 when the connection should close. */
static int serve_http(int fd, struct conn *c)
{
	for (;;) {
		char *end = memmem(c->req, c->have, "\r\n\r\n", 4);
		int used, close_it;
		if (!end)
			return c->have == BUF; /* header larger than the buffer: give up */
		used = (int)(end - c->req) + 4;
		close_it = memmem(c->req, used, "onnection: close", 16) != NULL ||
			   (memmem(c->req, used, "HTTP/1.0", 8) != NULL &&
			    memmem(c->req, used, "eep-alive", 9) == NULL);
		if (close_it) {
			(void)!write(fd, resp_close, resp_close_len);
			return 1;
		}
		(void)!write(fd, resp_keep, resp_keep_len);
		memmove(c->req, c->req + used, c->have - used);
		c->have -= used;
	}
}

int main(int argc, char **argv)
{
	int ep, i, nl = 0;
	int lfd[MAX_LISTEN], lmode[MAX_LISTEN];
	struct epoll_event ev, evs[MAX_EVENTS];

	if (argc < 3) {
		fprintf(stderr, "usage: %s ADDR PORT:MODE [PORT:MODE ...] (MODE discard|http)\n",
			argv[0]);
		return 2;
	}
	resp_keep_len = snprintf(resp_keep, sizeof resp_keep,
				 "HTTP/1.1 200 OK\r\nServer: synack\r\nContent-Type: text/plain\r\n"
				 "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n%s",
				 strlen(BODY), BODY);
	resp_close_len = snprintf(resp_close, sizeof resp_close,
				  "HTTP/1.1 200 OK\r\nServer: synack\r\nContent-Type: text/plain\r\n"
				  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				  strlen(BODY), BODY);
	conns = calloc(max_fd, sizeof *conns);
	if (!conns)
		return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	ep = epoll_create1(0);
	for (i = 2; i < argc && nl < MAX_LISTEN; i++) {
		int port;
		char mode[16] = "discard";
		if (sscanf(argv[i], "%d:%15s", &port, mode) < 1) {
			fprintf(stderr, "bad PORT:MODE %s\n", argv[i]);
			return 2;
		}
		lfd[nl] = listen_on(argv[1], port);
		if (lfd[nl] < 0) {
			perror("listen");
			return 1;
		}
		lmode[nl] = strcmp(mode, "http") == 0 ? HTTP : DISCARD;
		conns[lfd[nl]].listener = 1;
		conns[lfd[nl]].mode = lmode[nl];
		ev.events = EPOLLIN;
		ev.data.fd = lfd[nl];
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd[nl], &ev);
		nl++;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, 200);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct conn *c = &conns[fd];
			if (c->listener) {
				for (;;) {
					int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
					if (cfd < 0)
						break;
					if (cfd >= max_fd) {
						close(cfd);
						continue;
					}
					conns[cfd].mode = c->mode;
					conns[cfd].listener = 0;
					conns[cfd].have = 0;
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.fd = cfd;
					epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
				}
				continue;
			}
			for (;;) {
				ssize_t r;
				int done = 0;
				if (c->mode == HTTP)
					r = read(fd, c->req + c->have, BUF - c->have);
				else {
					char sink[BUF];
					r = read(fd, sink, sizeof sink);
				}
				if (r == 0) {
					done = 1;
				} else if (r < 0) {
					if (errno == EAGAIN || errno == EWOULDBLOCK)
						break;
					done = 1;
				} else if (c->mode == HTTP) {
					c->have += (int)r;
					done = serve_http(fd, c);
				}
				if (done) {
					/* close() also removes the fd from the epoll set */
					close(fd);
					break;
				}
			}
		}
	}
	return 0;
}
