/*
 * swarmlet-netns-ops: the agent's long-lived helper for work inside network namespaces, so that
 * plugging a task in or changing a rule is a few requests to a process that is already there,
 * not a process started for it (agent/runtime/netns-ops.ts is its other half).
 *
 * Node cannot enter a namespace (no setns), so this program does: for each request it opens the
 * namespace file (a /run/netns/NAME or a task's /proc/PID/ns/net), setns(2)s into it, does the
 * operation and setns(2)s back into its own namespace. The operations:
 *   'n'  nftables commands (a ruleset text, or `list table ip T`) through libnftables, the library
 *        the nft CLI is built on: one transaction, as `nft -f -` would apply it; the output and
 *        error text are what the CLI would print
 *   'r'  one rtnetlink request (the bytes of a netlink message, as the `netlink` package formats
 *        it) on a socket made inside the namespace; the reply is every message the kernel sent
 *        back, up to the ACK, error or end of dump for the request's sequence number
 *   'w'  writes a value to a file opened inside the namespace (body "PATH\nVALUE"): a sysctl of
 *        /proc/sys/net, which belongs to the namespace of the process that opens it
 *   'u'  sets a link up by name (SIOCSIFFLAGS on a socket made inside the namespace)
 *   'b'  a UDP socket bound, 'l' a TCP listener, on "ADDR\nPORT" inside the namespace (lo is set
 *        up first): the socket goes to the agent over Node's IPC channel (fd $NODE_CHANNEL_FD) as
 *        a dgram.Socket or net.Server handle, in a message {"netnsOps": ID}
 *   'o'  opens a file (a namespace file, for IFLA_NET_NS_FD) and answers its fd number, valid in
 *        this process's later requests; 'c' closes such an fd
 * Sockets are made after entering and closed before leaving (or handed over): nothing of this
 * process keeps a namespace alive after its last process is gone.
 *
 * Wire format, little-endian, on stdin and stdout; requests are answered one at a time, in order:
 *   request  u32 id, u32 op, u32 netns length, u32 body length, netns, body
 *            (netns: a path; "fd:N", a namespace file held open by 'o'; empty: its own namespace)
 *   reply    u32 id, i32 code (0: done; -1: nft refused; else an errno), u32 output length,
 *            u32 error length, output, error text
 * It exits when stdin or the IPC channel closes (the agent is gone). Built by
 * scripts/build-native.js.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* libnftables' API (nftables/libnftables.h; its -dev package need not be installed). */
struct nft_ctx;
extern struct nft_ctx *nft_ctx_new(uint32_t flags);
extern void nft_ctx_free(struct nft_ctx *ctx);
extern int nft_ctx_buffer_output(struct nft_ctx *ctx);
extern int nft_ctx_buffer_error(struct nft_ctx *ctx);
extern const char *nft_ctx_get_output_buffer(struct nft_ctx *ctx);
extern const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx);
extern int nft_run_cmd_from_buffer(struct nft_ctx *ctx, const char *buf);

#define MAX_PART (64u << 20)
#define RTNL_BUF (256u << 10)

static int ipc = -1;

struct reply {
  int32_t code;
  char *out;
  size_t outlen;
  char *err;
};

static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static char *text(const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

static void fail(struct reply *r, int code, char *message) {
  r->code = code ? code : EIO;
  free(r->err);
  r->err = message;
}

static void answer(struct reply *r, char *out) {
  r->out = out;
  r->outlen = out ? strlen(out) : 0;
}

static void nft(struct reply *r, const char *commands) {
  struct nft_ctx *ctx = nft_ctx_new(0);
  if (!ctx) return fail(r, ENOMEM, text("cannot make an nftables context"));
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  int rc = nft_run_cmd_from_buffer(ctx, commands);
  const char *out = nft_ctx_get_output_buffer(ctx);
  const char *err = nft_ctx_get_error_buffer(ctx);
  answer(r, strdup(out ? out : ""));
  r->err = strdup(err ? err : "");
  if (rc != 0) r->code = -1;
  nft_ctx_free(ctx);
}

static void rtnl(struct reply *r, const char *req, size_t len) {
  if (len < sizeof(struct nlmsghdr)) return fail(r, EINVAL, text("a netlink request is at least a header"));
  uint32_t seq = ((const struct nlmsghdr *)req)->nlmsg_seq;
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return fail(r, errno, text("netlink socket: %s", strerror(errno)));
  struct timeval tv = { 10, 0 };
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  char *buf = malloc(RTNL_BUF), *out = NULL;
  size_t outlen = 0;
  if (!buf) {
    close(s);
    return fail(r, ENOMEM, text("out of memory"));
  }
  if (sendto(s, req, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
    fail(r, errno, text("netlink send: %s", strerror(errno)));
    goto done;
  }
  for (int finished = 0; !finished;) {
    struct iovec iov = { buf, RTNL_BUF };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n = recvmsg(s, &mh, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(r, errno == EAGAIN ? ETIMEDOUT : errno, text("netlink receive: %s", strerror(errno)));
      goto done;
    }
    if (mh.msg_flags & MSG_TRUNC) {
      fail(r, EMSGSIZE, text("netlink reply truncated"));
      goto done;
    }
    char *grown = realloc(out, outlen + (size_t)n);
    if (!grown) {
      fail(r, ENOMEM, text("out of memory"));
      goto done;
    }
    out = grown;
    memcpy(out + outlen, buf, (size_t)n);
    outlen += (size_t)n;
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq == seq && (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)) finished = 1;
    }
  }
  r->out = out;
  r->outlen = outlen;
  out = NULL;
done:
  free(out);
  free(buf);
  close(s);
}

static void write_value(struct reply *r, char *body) {
  char *nl = strchr(body, '\n');
  if (!nl) return fail(r, EINVAL, text("a write needs PATH\\nVALUE"));
  *nl = '\0';
  const char *value = nl + 1;
  int fd = open(body, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return fail(r, errno, text("cannot open %s: %s", body, strerror(errno)));
  if (write_full(fd, value, strlen(value)) != 0) fail(r, errno, text("cannot write %s: %s", body, strerror(errno)));
  close(fd);
}

static void link_up(struct reply *r, const char *name) {
  struct ifreq ifr;
  if (strlen(name) >= IFNAMSIZ) return fail(r, EINVAL, text("invalid interface name %s", name));
  memset(&ifr, 0, sizeof(ifr));
  strcpy(ifr.ifr_name, name);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail(r, errno, text("socket: %s", strerror(errno)));
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    fail(r, errno, text("%s: %s", name, strerror(errno)));
  } else if (!(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail(r, errno, text("cannot set %s up: %s", name, strerror(errno)));
  }
  close(s);
}

/* Hands `fd` to the agent as a Node handle (lib/internal/child_process.js: NODE_HANDLE, acknowledged by NODE_HANDLE_ACK, which is drained). */
static int send_handle(int fd, uint32_t id, int udp) {
  char msg[160];
  int len = snprintf(msg, sizeof(msg), udp ? "{\"cmd\":\"NODE_HANDLE\",\"type\":\"dgram.Socket\",\"dgramType\":\"udp4\",\"msg\":{\"netnsOps\":%u}}\n"
                                           : "{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Server\",\"msg\":{\"netnsOps\":%u}}\n", id);
  struct iovec iov = { msg, (size_t)len };
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    ssize_t n = sendmsg(ipc, &mh, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n != len) return -1;
    return 0;
  }
}

static void bind_socket(struct reply *r, char *body, uint32_t id, int udp) {
  char *nl = strchr(body, '\n');
  if (!nl) return fail(r, EINVAL, text("a socket needs ADDR\\nPORT"));
  *nl = '\0';
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(nl + 1)) };
  if (inet_pton(AF_INET, body, &sa.sin_addr) != 1) return fail(r, EINVAL, text("invalid IPv4 address %s", body));
  if (ipc < 0) return fail(r, EPIPE, text("no IPC channel to hand the socket over"));
  struct reply lo = { 0, NULL, 0, NULL };
  link_up(&lo, "lo");
  free(lo.err);
  int s = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return fail(r, errno, text("socket: %s", strerror(errno)));
  int one = 1;
  if (!udp) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    fail(r, errno, text("bind %s:%s: %s", body, nl + 1, strerror(errno)));
  } else if (!udp && listen(s, 511) != 0) {
    fail(r, errno, text("listen %s:%s: %s", body, nl + 1, strerror(errno)));
  } else if (send_handle(s, id, udp) != 0) {
    fail(r, errno ? errno : EPIPE, text("cannot hand the socket over: %s", strerror(errno)));
  }
  close(s);
}

static void open_file(struct reply *r, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(r, errno, text("cannot open %s: %s", path, strerror(errno)));
  answer(r, text("%d", fd));
}

static void close_file(struct reply *r, const char *number) {
  int fd = atoi(number);
  if (fd <= 2 || fd == ipc) return fail(r, EBADF, text("fd %s is not one of its files", number));
  if (close(fd) != 0) fail(r, errno, text("close %d: %s", fd, strerror(errno)));
}

/* Waits for the next request, draining what the agent says on the IPC channel (acknowledgements) meanwhile; false when the agent is gone. */
static int wait_request(void) {
  for (;;) {
    struct pollfd fds[2] = { { 0, POLLIN, 0 }, { ipc, POLLIN, 0 } };
    int n = poll(fds, ipc >= 0 ? 2 : 1, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 0;
    if (ipc >= 0 && fds[1].revents) {
      char drain[4096];
      ssize_t got = read(ipc, drain, sizeof(drain));
      if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) return 0;
    }
    if (fds[0].revents) return 1;
  }
}

int main(void) {
  const char *channel = getenv("NODE_CHANNEL_FD");
  if (channel && *channel) ipc = atoi(channel);
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) {
    fprintf(stderr, "swarmlet-netns-ops: cannot open its own network namespace: %s\n", strerror(errno));
    return 1;
  }
  for (;;) {
    uint32_t head[4];
    if (!wait_request() || read_full(0, head, sizeof(head)) != 0) return 0;
    uint32_t id = head[0], op = head[1], nslen = head[2], bodylen = head[3];
    if (nslen > 4096 || bodylen > MAX_PART) {
      fprintf(stderr, "swarmlet-netns-ops: request too large\n");
      return 1;
    }
    char *ns = malloc(nslen + 1), *body = malloc(bodylen + 1);
    if (!ns || !body || read_full(0, ns, nslen) != 0 || read_full(0, body, bodylen) != 0) return 1;
    ns[nslen] = '\0';
    body[bodylen] = '\0';

    struct reply r = { 0, NULL, 0, NULL };
    int entered = 0;
    if (nslen > 0 && op != 'o' && op != 'c') {
      /* "fd:N": a namespace this process holds open ('o'), the very one opened then, even if its name now names another or none. */
      int held = strncmp(ns, "fd:", 3) == 0;
      int fd = held ? atoi(ns + 3) : open(ns, O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        fail(&r, errno, text("cannot open %s: %s", ns, strerror(errno)));
      } else {
        if (setns(fd, CLONE_NEWNET) != 0) fail(&r, errno, text("cannot enter %s: %s", ns, strerror(errno)));
        else entered = 1;
        if (!held) close(fd);
      }
    }
    if (r.code == 0) {
      switch (op) {
        case 'n': nft(&r, body); break;
        case 'r': rtnl(&r, body, bodylen); break;
        case 'w': write_value(&r, body); break;
        case 'u': link_up(&r, body); break;
        case 'b': bind_socket(&r, body, id, 1); break;
        case 'l': bind_socket(&r, body, id, 0); break;
        case 'o': open_file(&r, body); break;
        case 'c': close_file(&r, body); break;
        default: fail(&r, EINVAL, text("unknown operation %u", op));
      }
    }
    int lost = entered && setns(self, CLONE_NEWNET) != 0;

    const char *out = r.out ? r.out : "", *err = r.err ? r.err : "";
    uint32_t reply[4] = { id, (uint32_t)r.code, (uint32_t)r.outlen, (uint32_t)strlen(err) };
    if (write_full(1, reply, sizeof(reply)) != 0 || write_full(1, out, reply[2]) != 0 || write_full(1, err, reply[3]) != 0) return 0;
    free(r.out);
    free(r.err);
    free(ns);
    free(body);
    if (lost) {
      /* Still in the request's namespace: the next request would run in the wrong one. */
      fprintf(stderr, "swarmlet-netns-ops: cannot go back to its own network namespace: %s\n", strerror(errno));
      return 1;
    }
  }
}
