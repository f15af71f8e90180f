/*
 * TCP load generator for `deno task bench --scenarios tcp` (wrk cannot speak
 * raw TCP). One thread, epoll, non-blocking sockets; the harness pins it to
 * the load core as it does wrk. Compiled by scripts/bench/tcp_load.ts with
 * gcc -O2 and run as
 *
 *   tcp_load echo    HOST PORT CONNECTIONS SECONDS [MESSAGE_BYTES=102400]
 *   tcp_load connect HOST PORT CONNECTIONS SECONDS [MESSAGE_BYTES=64]
 *
 * echo: CONNECTIONS persistent connections (opened first, within 5 s), each
 *   writing a MESSAGE_BYTES message and reading it back in full (reading
 *   while it writes), then the next, for SECONDS. Latency is per message,
 *   first byte written to last byte read.
 * connect: CONNECTIONS concurrent loops of connect, write one message, read
 *   it back, close, for SECONDS. Latency is per cycle, connect() to close().
 *
 * Every byte read is compared with what was sent on that connection (each
 * message starts at its own offset of a pseudo-random pattern), so a proxy
 * that drops, reorders or mixes bytes shows up as `mismatches`. At the end of
 * SECONDS no new message or connection starts and the ones in flight get up
 * to 5 s to finish (they count for the byte check, not for the rate); then
 * one JSON line is printed and the program exits. bytesSent equals
 * bytesReceived when every echo came back whole. Exit code 0 unless the
 * arguments were wrong or no connection could be opened.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_NS 5000000000ULL
#define CONNECT_PHASE_NS 5000000000ULL
#define RBUF (256 * 1024)

enum state { IDLE, CONNECTING, ACTIVE, DONE };

struct conn {
  int fd;
  enum state state;
  size_t sent, recvd, off;
  uint64_t t0;
  unsigned seq;
  unsigned events; /* current epoll interest */
  int id;
};

static int ep;
static struct sockaddr_in target;
static size_t msg_bytes;
static unsigned char *pattern; /* 2 × msg_bytes, so any offset < msg_bytes has a whole message */
static unsigned char rbuf[RBUF];
static int connect_mode;

static uint64_t *lat;
static size_t lat_n, lat_cap;
static unsigned long long completed, drained, errors, mismatches, incomplete, connect_errors;
static unsigned long long bytes_sent, bytes_received;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void record(uint64_t ns) {
  if (lat_n == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 65536;
    lat = realloc(lat, lat_cap * sizeof *lat);
    if (!lat) {
      fprintf(stderr, "tcp_load: out of memory\n");
      exit(1);
    }
  }
  lat[lat_n++] = ns;
}

static void interest(struct conn *c, unsigned events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.ptr = c};
  epoll_ctl(ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
  c->events = events;
}

static void close_conn(struct conn *c, enum state next) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->events = 0;
  c->state = next;
}

static void start_message(struct conn *c, uint64_t t) {
  c->seq++;
  c->off = ((size_t)c->id * 7919u + (size_t)c->seq * 104729u) % msg_bytes;
  c->sent = c->recvd = 0;
  if (!connect_mode) c->t0 = t;
}

/** Starts a non-blocking connect (connect mode: with a new message); returns 0, or -1 (counted) when the socket call fails at once. */
static int start_connect(struct conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    connect_errors++;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->events = 0;
  c->t0 = now_ns();
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    connect_errors++;
    close_conn(c, IDLE);
    return -1;
  }
  c->state = CONNECTING;
  if (connect_mode) start_message(c, c->t0);
  interest(c, EPOLLOUT);
  return 0;
}

/** Writes what the socket takes of the current message; -1 on error. */
static int pump_write(struct conn *c) {
  while (c->sent < msg_bytes) {
    ssize_t n = write(c->fd, pattern + c->off + c->sent, msg_bytes - c->sent);
    if (n > 0) {
      c->sent += (size_t)n;
      bytes_sent += (unsigned long long)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return -1;
  }
  interest(c, c->sent < msg_bytes ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
  return 0;
}

static void fail(struct conn *c, int running) {
  errors++;
  close_conn(c, IDLE);
  /* connect mode opens a new connection in its place; echo mode loses the slot */
  if (connect_mode && running) {
    start_connect(c); /* IDLE again when it fails: retried by the main loop */
  } else {
    c->state = DONE;
  }
}

/* One message came back whole. */
static void finished(struct conn *c, uint64_t t, uint64_t deadline) {
  if (t <= deadline) {
    completed++;
    record(t - c->t0);
  } else {
    drained++;
  }
  if (connect_mode) {
    close_conn(c, IDLE);
    if (t < deadline) {
      start_connect(c);
    } else {
      c->state = DONE;
    }
    return;
  }
  if (t < deadline) {
    start_message(c, t);
    if (pump_write(c) < 0) fail(c, 1);
  } else {
    close_conn(c, DONE);
  }
}

static void on_event(struct conn *c, unsigned events, uint64_t deadline) {
  int running = now_ns() < deadline;
  if (c->state == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      connect_errors++;
      close_conn(c, IDLE);
      if (connect_mode && running) start_connect(c);
      else c->state = DONE;
      return;
    }
    c->state = ACTIVE;
    if (pump_write(c) < 0) return fail(c, running);
    return;
  }
  if (c->state != ACTIVE) return;
  if ((events & EPOLLOUT) && c->sent < msg_bytes) {
    if (pump_write(c) < 0) return fail(c, running);
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) return;
  for (;;) {
    size_t want = msg_bytes - c->recvd;
    if (want > RBUF) want = RBUF;
    if (want == 0) want = 1; /* anything beyond the message is a mismatch */
    ssize_t n = read(c->fd, rbuf, want);
    if (n > 0) {
      bytes_received += (unsigned long long)n;
      if (c->recvd + (size_t)n > c->sent ||
          memcmp(rbuf, pattern + c->off + c->recvd, (size_t)n) != 0) {
        mismatches++;
        return fail(c, running);
      }
      c->recvd += (size_t)n;
      if (c->recvd == msg_bytes) {
        uint64_t t = now_ns();
        finished(c, t, deadline);
        return; /* the next message (or connection) is under way */
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    return fail(c, running); /* EOF or reset before the whole echo came back */
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(double p) {
  if (!lat_n) return 0;
  size_t i = (size_t)(p * (double)(lat_n - 1) + 0.5);
  return (double)lat[i] / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 6 || argc > 7 || (strcmp(argv[1], "echo") && strcmp(argv[1], "connect"))) {
    fprintf(stderr, "usage: tcp_load echo|connect HOST PORT CONNECTIONS SECONDS [MESSAGE_BYTES]\n");
    return 2;
  }
  connect_mode = strcmp(argv[1], "connect") == 0;
  int nconn = atoi(argv[4]);
  double seconds = atof(argv[5]);
  msg_bytes = argc == 7 ? (size_t)atol(argv[6]) : (connect_mode ? 64 : 102400);
  if (nconn < 1 || seconds <= 0 || msg_bytes < 1) {
    fprintf(stderr, "tcp_load: bad CONNECTIONS, SECONDS or MESSAGE_BYTES\n");
    return 2;
  }
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((unsigned short)atoi(argv[3]));
  if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
    fprintf(stderr, "tcp_load: HOST must be an IPv4 address, got %s\n", argv[2]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  pattern = malloc(2 * msg_bytes);
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < 2 * msg_bytes; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    pattern[i] = (unsigned char)(x >> 24);
  }
  ep = epoll_create1(0);
  struct conn *conns = calloc((size_t)nconn, sizeof *conns);
  struct epoll_event events[512];

  uint64_t start, deadline;
  if (connect_mode) {
    start = now_ns();
    deadline = start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < nconn; i++) {
      conns[i].id = i;
      conns[i].fd = -1;
      start_connect(&conns[i]);
    }
  } else {
    /* Open every persistent connection first (bounded), then start the clock. */
    uint64_t limit = now_ns() + CONNECT_PHASE_NS;
    int open = 0, failed = 0;
    for (int i = 0; i < nconn; i++) {
      conns[i].id = i;
      conns[i].fd = -1;
      if (start_connect(&conns[i]) < 0) failed++;
    }
    while (open + failed < nconn && now_ns() < limit) {
      int n = epoll_wait(ep, events, 512, 100);
      for (int i = 0; i < n; i++) {
        struct conn *c = events[i].data.ptr;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          connect_errors++;
          failed++;
          close_conn(c, DONE);
        } else {
          open++;
          c->state = ACTIVE;
          interest(c, EPOLLIN);
        }
      }
    }
    if (open == 0) {
      fprintf(stderr, "tcp_load: no connection to %s:%s could be opened\n", argv[2], argv[3]);
      return 1;
    }
    for (int i = 0; i < nconn; i++) {
      if (conns[i].state == CONNECTING) {
        connect_errors++;
        close_conn(&conns[i], DONE);
      }
    }
    start = now_ns();
    deadline = start + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < nconn; i++) {
      if (conns[i].state != ACTIVE) continue;
      start_message(&conns[i], start);
      if (pump_write(&conns[i]) < 0) fail(&conns[i], 1);
    }
  }

  uint64_t hard_stop = deadline + DRAIN_NS;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= hard_stop) break;
    /* Past the deadline: stop once nothing is in flight. */
    if (t >= deadline) {
      int busy = 0;
      for (int i = 0; i < nconn && !busy; i++) {
        busy = conns[i].state == ACTIVE || conns[i].state == CONNECTING;
      }
      if (!busy) break;
    }
    uint64_t until = t < deadline ? deadline : hard_stop;
    int timeout = (int)((until - t) / 1000000ULL) + 1;
    if (timeout > 100) timeout = 100;
    int n = epoll_wait(ep, events, 512, timeout);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; i++) {
      on_event(events[i].data.ptr, events[i].events, deadline);
    }
    /* connect mode: slots whose socket() failed (descriptors or ports ran out) try again */
    if (connect_mode && now_ns() < deadline) {
      for (int i = 0; i < nconn; i++) {
        if (conns[i].state == IDLE) start_connect(&conns[i]);
      }
    }
  }
  for (int i = 0; i < nconn; i++) {
    if (conns[i].state == ACTIVE || conns[i].state == CONNECTING) incomplete++;
    if (conns[i].fd >= 0) close(conns[i].fd);
  }
  double elapsed = (double)(deadline - start) / 1e9;
  qsort(lat, lat_n, sizeof *lat, cmp_u64);
  double per_sec = (double)completed / elapsed;
  printf(
      "{\"mode\":\"%s\",\"connections\":%d,\"messageBytes\":%zu,\"durationSec\":%.3f,"
      "\"completed\":%llu,\"perSec\":%.1f,\"mbPerSec\":%.2f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,"
      "\"bytesSent\":%llu,\"bytesReceived\":%llu,\"drained\":%llu,\"errors\":%llu,"
      "\"connectErrors\":%llu,\"mismatches\":%llu,\"incomplete\":%llu}\n",
      connect_mode ? "connect" : "echo", nconn, msg_bytes, elapsed, completed, per_sec,
      per_sec * (double)msg_bytes / 1e6, pct_ms(0.50), pct_ms(0.99), bytes_sent, bytes_received,
      drained, errors, connect_errors, mismatches, incomplete);
  return 0;
}
