// nfq-impair: serves one NFQUEUE queue and impairs what passes through it, because this kernel has
// no sch_netem. Each packet is dropped with probability --loss (percent), or held and accepted
// after --delay-ms +- uniform --jitter-ms. Release times never go backwards (a packet leaves no
// earlier than the one before it), so TCP sees delay and loss but no reordering.
//
//   nfq-impair --queue N [--delay-ms D] [--jitter-ms J] [--loss P] [--seed S]
//
// stdout: "ready" once bound; a JSON line of counters on SIGUSR1 and at exit (SIGTERM/SIGINT).
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif

struct held {
  uint32_t id;
  int64_t release_us;
};

static struct {
  unsigned queue;
  double delay_us, jitter_us, loss;
  uint64_t rng;
  struct nfq_q_handle *qh;
  struct held *ring;
  size_t cap, head, len;
  int64_t last_release_us;
  uint64_t seen, dropped, accepted, enobufs;
} st;

static volatile sig_atomic_t stop_requested, report_requested;

static void on_stop(int sig) { (void)sig; stop_requested = 1; }
static void on_report(int sig) { (void)sig; report_requested = 1; }

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

// xorshift64*: small, seedable and good enough to pick drops and jitter.
static double uniform01(void) {
  st.rng ^= st.rng >> 12;
  st.rng ^= st.rng << 25;
  st.rng ^= st.rng >> 27;
  return (double)((st.rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void report(void) {
  printf("{\"queue\":%u,\"seen\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"accepted\":%" PRIu64
         ",\"pending\":%zu,\"enobufs\":%" PRIu64 "}\n",
         st.queue, st.seen, st.dropped, st.accepted, st.len, st.enobufs);
  fflush(stdout);
}

static void push(uint32_t id, int64_t release_us) {
  if (st.len == st.cap) {
    size_t cap = st.cap ? st.cap * 2 : 4096;
    struct held *ring = malloc(cap * sizeof *ring);
    if (!ring) { perror("nfq-impair: malloc"); exit(1); }
    for (size_t i = 0; i < st.len; i++) ring[i] = st.ring[(st.head + i) % st.cap];
    free(st.ring);
    st.ring = ring;
    st.cap = cap;
    st.head = 0;
  }
  st.ring[(st.head + st.len) % st.cap] = (struct held){ id, release_us };
  st.len++;
}

static void accept_one(uint32_t id) {
  nfq_set_verdict(st.qh, id, NF_ACCEPT, 0, NULL);
  st.accepted++;
}

// Accepts every held packet due by `until_us`; returns the next release time, or -1 if none.
static int64_t release_due(int64_t until_us) {
  while (st.len && st.ring[st.head].release_us <= until_us) {
    accept_one(st.ring[st.head].id);
    st.head = (st.head + 1) % st.cap;
    st.len--;
  }
  return st.len ? st.ring[st.head].release_us : -1;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg; (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  st.seen++;
  if (st.loss > 0 && uniform01() * 100.0 < st.loss) {
    nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
    st.dropped++;
    return 0;
  }
  double delay = st.delay_us + (st.jitter_us > 0 ? (uniform01() * 2 - 1) * st.jitter_us : 0);
  int64_t release = now_us() + (delay > 0 ? (int64_t)delay : 0);
  if (release < st.last_release_us) release = st.last_release_us;
  st.last_release_us = release;
  if (st.len == 0 && release <= now_us()) accept_one(id);
  else push(id, release);
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: nfq-impair --queue N [--delay-ms D] [--jitter-ms J] [--loss PERCENT] [--seed S]\n");
  exit(2);
}

static void parse_args(int argc, char **argv) {
  static const struct option opts[] = {
    { "queue", required_argument, NULL, 'q' },   { "delay-ms", required_argument, NULL, 'd' },
    { "jitter-ms", required_argument, NULL, 'j' }, { "loss", required_argument, NULL, 'l' },
    { "seed", required_argument, NULL, 's' },    { NULL, 0, NULL, 0 },
  };
  int have_queue = 0, c;
  st.rng = 0x9E3779B97F4A7C15ULL;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    char *end = NULL;
    switch (c) {
      case 'q': st.queue = (unsigned)strtoul(optarg, &end, 10); have_queue = 1; break;
      case 'd': st.delay_us = strtod(optarg, &end) * 1000; break;
      case 'j': st.jitter_us = strtod(optarg, &end) * 1000; break;
      case 'l': st.loss = strtod(optarg, &end); break;
      case 's': st.rng = strtoull(optarg, &end, 10) * 0x9E3779B97F4A7C15ULL + 1; break;
      default: usage();
    }
    if (!end || *end) usage();
  }
  if (!have_queue || optind != argc || st.delay_us < 0 || st.jitter_us < 0 || st.loss < 0 || st.loss > 100) usage();
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  // The lab starts us with `ip netns exec`, which execs in place: our parent is the lab's process,
  // and if it dies without cleaning up we should not keep the queue (and its packets) alive.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) return 1;

  struct sigaction sa = { 0 };
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sa.sa_handler = on_report;
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct nfq_handle *h = nfq_open();
  if (!h) { perror("nfq-impair: nfq_open"); return 1; }
  st.qh = nfq_create_queue(h, (uint16_t)st.queue, on_packet, NULL);
  if (!st.qh) { fprintf(stderr, "nfq-impair: cannot bind queue %u: %s\n", st.queue, strerror(errno)); return 1; }
  // Metadata is enough to give a verdict; without NFQA_CFG_F_GSO the kernel segments GSO packets
  // before queueing them, so loss and delay act on wire-sized packets.
  if (nfq_set_mode(st.qh, NFQNL_COPY_META, 0) < 0) { perror("nfq-impair: nfq_set_mode"); return 1; }
  if (nfq_set_queue_maxlen(st.qh, 65536) < 0) perror("nfq-impair: nfq_set_queue_maxlen");
  int fd = nfq_fd(h);
  int rcvbuf = 32 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");
  fflush(stdout);

  static char buf[65536] __attribute__((aligned));
  while (!stop_requested) {
    if (report_requested) { report_requested = 0; report(); }
    int64_t next = release_due(now_us());
    int timeout = -1;
    if (next >= 0) {
      int64_t wait_us = next - now_us();
      timeout = wait_us <= 0 ? 0 : (int)((wait_us + 999) / 1000);
    }
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int n = poll(&pfd, 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("nfq-impair: poll");
      break;
    }
    if (n == 0 || !(pfd.revents & POLLIN)) continue;
    // Drain what is readable without blocking, then go back to releasing.
    for (;;) {
      ssize_t len = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (len >= 0) { nfq_handle_packet(h, buf, (int)len); continue; }
      if (errno == ENOBUFS) { st.enobufs++; continue; }  // the kernel dropped some: keep serving
      if (errno != EAGAIN && errno != EINTR) perror("nfq-impair: recv");
      break;
    }
  }

  // Let what we still hold go rather than drop it when the queue is unbound.
  release_due(INT64_MAX);
  report();
  nfq_destroy_queue(st.qh);
  nfq_close(h);
  return 0;
}
