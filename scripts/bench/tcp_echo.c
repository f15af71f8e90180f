/*
 * TCP echo backend for `deno task bench --scenarios tcp`: one thread, epoll,
 * non-blocking sockets. Every byte read is written back on the same
 * connection; while a write is pending the connection stops reading
 * (backpressure), so EOF is seen only once everything read was echoed, and
 * then closes the connection. Compiled by scripts/bench/tcp_load.ts with gcc -O2.
 *
 *   tcp_echo PORT            listens on 127.0.0.1:PORT, prints "ready PORT"
 *
 * Runs until killed (the harness stops its process group).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536

struct conn {
  int fd;
  size_t off, len; /* pending bytes buf[off, len) */
  char buf[BUF];
};

static int ep;

static void drop(struct conn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c);
}

static void watch(struct conn *c, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(ep, op, c->fd, &ev);
}

/* Writes what is pending; returns 1 when all of it is out, 0 when the socket is full, -1 on error. */
static int flush(struct conn *c) {
  while (c->off < c->len) {
    ssize_t n = write(c->fd, c->buf + c->off, c->len - c->off);
    if (n > 0) {
      c->off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -1;
  }
  c->off = c->len = 0;
  return 1;
}

static void on_event(struct conn *c, unsigned events) {
  if (c->len) {
    int f = flush(c);
    if (f < 0) return drop(c);
    if (f == 0) return; /* still waiting for EPOLLOUT */
    watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP);
  }
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  for (;;) {
    ssize_t n = read(c->fd, c->buf, BUF);
    if (n > 0) {
      c->off = 0;
      c->len = (size_t)n;
      int f = flush(c);
      if (f < 0) return drop(c);
      if (f == 0) {
        watch(c, EPOLL_CTL_MOD, EPOLLOUT);
        return;
      }
      continue;
    }
    if (n == 0) return drop(c);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return drop(c);
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tcp_echo PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int port = atoi(argv[1]);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) {
    fprintf(stderr, "tcp_echo: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    return 1;
  }
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  printf("ready %d\n", port);
  fflush(stdout);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; i++) {
      struct conn *c = events[i].data.ptr;
      if (c) {
        on_event(c, events[i].events);
        continue;
      }
      for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) break;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *nc = malloc(sizeof *nc);
        if (!nc) {
          close(fd);
          continue;
        }
        nc->fd = fd;
        nc->off = nc->len = 0;
        watch(nc, EPOLL_CTL_ADD, EPOLLIN | EPOLLRDHUP);
      }
    }
  }
}
