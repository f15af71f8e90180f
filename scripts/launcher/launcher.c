/*
 * Portico's standalone launcher: the offline route to one executable when
 * `deno compile` cannot download its runtime (denort).
 *
 * scripts/compile.ts appends a payload to this small program:
 *
 *   [launcher ELF][deno binary][portico.js bundle][trailer]
 *
 * The trailer (struct trailer below, little-endian, last 64 bytes) gives each
 * part's offset and size and a hash of both. On the first run the launcher
 * copies the two parts into a private cache directory
 *
 *   $PORTICO_CACHE_DIR, else $CACHE_DIRECTORY (systemd CacheDirectory=),
 *   else ${XDG_CACHE_HOME:-$HOME/.cache}/portico, then /<hash>/
 *
 * through a temporary directory renamed into place, so a crash or a race
 * between two first runs never leaves a half-written runtime. Every later run
 * finds the directory and execs at once:
 *
 *   deno run -A --no-config --no-lock --no-remote --no-npm --unstable-net portico.js ARGS...
 *
 * with DENO_DIR inside the cache directory (V8's code cache lands there, and
 * nothing is fetched from the network). exec keeps the process id, so
 * signals (SIGTERM from systemd or docker) reach Deno directly.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAGIC "PORTICO-PAYLOAD1"

struct trailer {
  uint64_t deno_offset;
  uint64_t deno_size;
  uint64_t bundle_offset;
  uint64_t bundle_size;
  char hash[16]; /* hex prefix of SHA-256(deno || bundle), not NUL-terminated */
  char magic[16];
};

_Static_assert(sizeof(struct trailer) == 64, "trailer must be 64 bytes");

static void die(const char *what, const char *detail) {
  if (detail)
    fprintf(stderr, "portico: %s: %s\n", what, detail);
  else
    fprintf(stderr, "portico: %s\n", what);
  exit(1);
}

static int mkdir_p(const char *path, mode_t mode) {
  char buf[4096];
  if (strlen(path) >= sizeof buf) return -1;
  strcpy(buf, path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
  return 0;
}

/* Copies [offset, offset+size) of fd into a new file at path. */
static void extract(int fd, uint64_t offset, uint64_t size, const char *path, mode_t mode) {
  int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out < 0) die("cannot create", path);
  char buf[1 << 16];
  uint64_t done = 0;
  while (done < size) {
    size_t want = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
    ssize_t n = pread(fd, buf, want, (off_t)(offset + done));
    if (n <= 0) die("cannot read payload", strerror(n < 0 ? errno : EIO));
    for (ssize_t w = 0; w < n;) {
      ssize_t m = write(out, buf + w, (size_t)(n - w));
      if (m < 0) die("cannot write", path);
      w += m;
    }
    done += (uint64_t)n;
  }
  if (fsync(out) != 0 || close(out) != 0) die("cannot write", path);
}

static void remove_tree_shallow(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/deno", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/portico.js", dir);
  unlink(path);
  rmdir(dir);
}

static void cache_root(char *out, size_t len) {
  const char *v;
  if ((v = getenv("PORTICO_CACHE_DIR")) && *v) {
    snprintf(out, len, "%s", v);
  } else if ((v = getenv("CACHE_DIRECTORY")) && *v) {
    /* systemd may list several, colon-separated; the first is ours. */
    snprintf(out, len, "%.*s", (int)strcspn(v, ":"), v);
  } else if ((v = getenv("XDG_CACHE_HOME")) && *v) {
    snprintf(out, len, "%s/portico", v);
  } else if ((v = getenv("HOME")) && *v && strcmp(v, "/") != 0) {
    snprintf(out, len, "%s/.cache/portico", v);
  } else {
    snprintf(out, len, "/tmp/portico-%u", (unsigned)getuid());
  }
}

int main(int argc, char **argv) {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open own executable", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(struct trailer)) die("no payload", "file too small");
  struct trailer t;
  if (pread(fd, &t, sizeof t, st.st_size - (off_t)sizeof t) != (ssize_t)sizeof t) die("cannot read trailer", NULL);
  if (memcmp(t.magic, MAGIC, sizeof t.magic) != 0) die("no payload", "rebuild with `deno task compile`");
  if (t.deno_offset + t.deno_size > t.bundle_offset ||
      t.bundle_offset + t.bundle_size > (uint64_t)st.st_size - sizeof t)
    die("corrupt payload", "offsets out of range");

  char root[2048], dir[2100], deno[2200], bundle[2200], deno_dir[2200];
  cache_root(root, sizeof root);
  if (strlen(root) >= sizeof root - 1) die("cache directory path too long", root);
  snprintf(dir, sizeof dir, "%s/%.16s", root, t.hash);
  snprintf(deno, sizeof deno, "%s/deno", dir);
  snprintf(bundle, sizeof bundle, "%s/portico.js", dir);
  snprintf(deno_dir, sizeof deno_dir, "%s/deno_dir", dir);

  struct stat ds;
  if (stat(dir, &ds) != 0) {
    if (mkdir_p(root, 0700) != 0) die("cannot create cache directory", root);
    char tmp[2200];
    snprintf(tmp, sizeof tmp, "%s/.%.16s.XXXXXX", root, t.hash);
    if (!mkdtemp(tmp)) die("cannot create cache directory", tmp);
    char part[2300];
    snprintf(part, sizeof part, "%s/deno", tmp);
    extract(fd, t.deno_offset, t.deno_size, part, 0700);
    snprintf(part, sizeof part, "%s/portico.js", tmp);
    extract(fd, t.bundle_offset, t.bundle_size, part, 0600);
    snprintf(part, sizeof part, "%s/deno_dir", tmp);
    if (mkdir(part, 0700) != 0) die("cannot create", part);
    if (rename(tmp, dir) != 0) {
      /* Another first run won the race; its copy is identical. */
      if (errno != EEXIST && errno != ENOTEMPTY) die("cannot install runtime into", dir);
      rmdir(part);
      remove_tree_shallow(tmp);
    }
    if (stat(dir, &ds) != 0) die("cannot stat", dir);
  }
  /* Refuse a cache another user could have planted or can modify. */
  if (ds.st_uid != getuid() || (ds.st_mode & 022) != 0)
    die("refusing cache directory not private to this user (owner or mode)", dir);

  setenv("DENO_DIR", deno_dir, 1);
  setenv("DENO_NO_UPDATE_CHECK", "1", 1);
  setenv("DENO_NO_PROMPT", "1", 1);

  char **args = calloc((size_t)argc + 10, sizeof *args);
  if (!args) die("out of memory", NULL);
  int n = 0;
  args[n++] = deno;
  args[n++] = "run";
  args[n++] = "-A";
  args[n++] = "--no-config";
  args[n++] = "--no-lock";
  args[n++] = "--no-remote";
  args[n++] = "--no-npm";
  /* SO_REUSEPORT, for [server] workers */
  args[n++] = "--unstable-net";
  args[n++] = bundle;
  for (int i = 1; i < argc; i++) args[n++] = argv[i];
  args[n] = NULL;
  close(fd);
  execv(deno, args);
  fprintf(stderr, "portico: cannot exec runtime %s: %s (delete %s to re-extract)\n", deno, strerror(errno), dir);
  return 1;
}
